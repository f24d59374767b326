"""Hypervisors, VMs and the underlay of a lab, all namespaces on this one machine.

- `Hypervisor`: a namespace with its own OVS (`OvsInstance`) and an integration bridge.
- `Underlay`: a namespace holding a Linux bridge; hypervisors attach to it with veths,
  so any number of them share one L2 segment (like hosts on one physical switch).
  A hypervisor attaches either through `br-phy`, a netdev bridge that holds its
  underlay IP (what OVS userspace tunnels need), or with the underlay veth plugged
  straight into the integration bridge (MAC2MAC, no encapsulation).
- `Vm`: a namespace whose eth0 is a veth into a hypervisor's bridge.
- `LinuxHost`: a plain machine outside the cloud (external host, upstream router) on
  one or more segments.
- `Lab`: creates all of the above under one name prefix and removes everything with
  that prefix on close, including leftovers from parts that failed half way.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from lab.netns import Netns, add_veth, list_netns
from lab.ovs import OvsInstance
from lab.probes import (
    BackgroundPing,
    PingResult,
    TransferResult,
    ping_argv,
    run_transfer,
)
from lab.proc import read_pidfile, same_process, start_time, terminate, write_pidfile

BASE_DIR = Path(os.environ.get("VNET_LAB_DIR", "/tmp/vnet-lab"))
UNDERLAY_MTU = 1600  # room for VXLAN's 50 bytes over 1500-byte VM frames
TUNNEL_VM_MTU = 1450


def new_prefix() -> str:
    """A fresh `vl<4 hex>-` prefix not used by any namespace or lab directory."""
    while True:
        prefix = f"vl{secrets.token_hex(2)}-"
        taken = any(n.startswith(prefix) for n in list_netns())
        if not taken and not lab_dir(prefix).exists():
            return prefix


def lab_dir(prefix: str, base_dir: Path = BASE_DIR) -> Path:
    return base_dir / prefix.rstrip("-")


class Hypervisor:
    """A namespace with a private OVS and an integration bridge (datapath_type=netdev)."""

    def __init__(
        self,
        lab: Lab,
        name: str,
        dpid: int | str,
        *,
        bridge: str = "br-int",
        controller: str | None = None,
    ):
        self.lab = lab
        self.name = name
        self.dpid = dpid
        self.bridge = bridge
        self.netns = lab.add_netns(name)
        self.ovs = OvsInstance(f"{lab.prefix}{name}", lab.dir / name, self.netns)
        lab.on_close(self.ovs.stop)
        self.ovs.start()
        self.ovs.add_bridge(bridge, dpid, controller)
        # Set by attach_underlay.
        self.underlay_ip: str | None = None
        self.underlay_mac: str | None = None
        self.underlay_port: str | None = None
        self.underlay_ofport: int | None = None
        self.phy_bridge: str | None = None

    def __repr__(self) -> str:
        return f"Hypervisor({self.name!r}, ns={self.netns.name!r})"

    def set_controller(self, target: str | None) -> None:
        """e.g. tcp:127.0.0.1:6633 — an address inside this hypervisor's namespace."""
        self.ovs.set_controller(self.bridge, *([target] if target else []))

    def attach_underlay(
        self,
        underlay: Underlay,
        ip: str | None = None,
        *,
        mode: str = "br-phy",
        mac: str | None = None,
        port_name: str = "ul0",
        ofport: int | None = None,
        phy_bridge: str = "br-phy",
    ) -> None:
        """Join the underlay segment.

        mode="br-phy": the veth goes on a netdev bridge `phy_bridge` that carries `ip`
        (CIDR) and `mac`; OVS routes its userspace tunnels through it.
        mode="br-int": the veth goes on the integration bridge (as `ofport`) with MAC
        `mac`, for MAC2MAC; `ip` is only recorded.
        """
        if mode not in ("br-phy", "br-int"):
            raise ValueError(f"unknown underlay mode {mode!r}")
        underlay.connect(self.netns, port_name, peer_name=self.name)
        self.underlay_port = port_name
        self.underlay_ip = ip.split("/")[0] if ip else None
        if mode == "br-int":
            if mac:
                self.netns.set_link(port_name, mac=mac, mtu=underlay.mtu)
            self.ovs.add_port(self.bridge, port_name, ofport=ofport)
            self.underlay_ofport = self.ovs.ofport(port_name)
            self.underlay_mac = self.netns.mac_of(port_name)
            return
        extra = {"hwaddr": mac} if mac else None
        self.ovs.add_bridge(phy_bridge, fail_mode=None, other_config=extra)
        self.ovs.add_port(phy_bridge, port_name)
        self.netns.set_link(phy_bridge, mtu=underlay.mtu)
        if ip:
            self.netns.add_addr(phy_bridge, ip)
        self.phy_bridge = phy_bridge
        self.underlay_mac = self.netns.mac_of(phy_bridge)

    def add_tunnel(
        self,
        name: str = "vxlan0",
        remote_ip: str = "flow",
        *,
        type: str = "vxlan",
        key: str = "flow",
        ofport: int | None = None,
    ) -> int:
        """A tunnel port on the integration bridge, sourced from the underlay IP.
        Returns its OpenFlow port number."""
        if not self.underlay_ip or not self.phy_bridge:
            raise RuntimeError("attach_underlay(mode='br-phy', ip=...) must come first")
        options = {"remote_ip": remote_ip, "local_ip": self.underlay_ip, "key": key}
        self.ovs.add_port(self.bridge, name, type=type, ofport=ofport, options=options)
        return self.ovs.ofport(name)

    def seed_tunnel_neighbor(self, other: Hypervisor) -> None:
        """Tell this OVS the underlay MAC of `other` ahead of the first packet."""
        if not (self.phy_bridge and other.underlay_ip and other.underlay_mac):
            raise RuntimeError("both hypervisors need a br-phy underlay")
        self.ovs.set_tnl_neigh(self.phy_bridge, other.underlay_ip, other.underlay_mac)

    def wait_controller_connected(self, timeout: float = 20.0) -> None:
        self.ovs.wait_controller_connected(self.bridge, timeout)

    def add_flows(self, flows: list[str]) -> None:
        self.ovs.add_flows(self.bridge, flows)

    def dump_flows(self, keep_counters: bool = False) -> list[str]:
        return self.ovs.dump_flows(self.bridge, keep_counters=keep_counters)


class Underlay:
    """One L2 segment: a Linux bridge in its own namespace."""

    def __init__(self, lab: Lab, name: str = "ul", mtu: int = UNDERLAY_MTU):
        self.netns = lab.add_netns(name)
        self.mtu = mtu
        self.bridge = "br0"
        self.netns.add_linux_bridge(self.bridge, mtu=mtu)

    def connect(self, ns: Netns, ifname: str, *, peer_name: str) -> None:
        """A veth from `ns` (named `ifname`) to this segment (named `peer_name` here)."""
        add_veth(ifname, ns, peer_name, self.netns, mtu=self.mtu)
        self.netns.ip("link", "set", peer_name, "master", self.bridge)


class LinuxHost:
    """A plain Linux machine outside the cloud (an external host, an upstream router):
    a namespace attached to one or more `Underlay` segments, its own routes."""

    def __init__(self, lab: Lab, name: str):
        self.name = name
        self.netns = lab.add_netns(name)
        self.addresses: dict[str, str] = {}  # ifname: address

    def __repr__(self) -> str:
        return f"LinuxHost({self.name!r}, {self.addresses})"

    def attach(self, segment: Underlay, cidr: str, *, ifname: str = "eth0",
               mac: str | None = None) -> None:
        """A veth `ifname` onto `segment` carrying `cidr` (transmit checksum offload
        off: its packets may cross an OVS userspace datapath)."""
        segment.connect(self.netns, ifname, peer_name=f"{self.name}-{ifname}")
        if mac:
            self.netns.set_link(ifname, mac=mac)
        self.netns.add_addr(ifname, cidr)
        self.netns.tx_off(ifname)
        self.addresses[ifname] = cidr.split("/")[0]

    def mac_of(self, ifname: str = "eth0") -> str:
        return self.netns.mac_of(ifname)

    def enable_forwarding(self) -> None:
        self.netns.run("sysctl", "-qw", "net.ipv4.ip_forward=1")

    def add_route(self, dest: str, via: str) -> None:
        self.netns.add_route(dest, via=via)

    def del_route(self, dest: str) -> None:
        self.netns.ip("route", "del", dest, check=False)

    def neighbor(self, ip: str) -> str:
        """`ip neigh show <ip>` (empty when unknown)."""
        return self.netns.ip("neigh", "show", ip).strip()

    def flush_neighbors(self) -> None:
        self.netns.ip("neigh", "flush", "all")

    def ping(self, dst: str, count: int = 1, *, wait: float = 1.0,
             interval: float = 0.2) -> PingResult:
        argv = ping_argv(dst, count, interval=interval, wait=wait)
        proc = self.netns.run(*argv, check=False, timeout=count * (interval + wait) + 10)
        return PingResult.parse(proc.stdout + proc.stderr, proc.returncode)


class Vm:
    """A namespace whose eth0 is a veth into `hv`'s integration bridge."""

    def __init__(
        self,
        lab: Lab,
        hv: Hypervisor,
        name: str,
        mac: str,
        ip: str | None,
        *,
        gateway: str | None = None,
        mtu: int = 1500,
        ofport: int | None = None,
        iface_id: str | None = None,
        port_name: str | None = None,
        tx_off: bool = True,
    ):
        if ip is not None and "/" not in ip:
            raise ValueError(f"VM address {ip!r} needs a prefix length, e.g. 10.0.0.1/24")
        self.hv = hv
        self.name = name
        self.mac = mac.lower()
        # ip=None: eth0 starts without an address (a DHCP client configures it)
        self.cidr = ip
        self.ip = ip.split("/")[0] if ip is not None else None
        self.dir = lab.dir / "vms" / name
        self.gateway = gateway
        self.port_name = port_name or name
        self.iface_id = iface_id or f"{lab.prefix}{name}"
        self.netns = lab.add_netns(name)
        add_veth(self.port_name, hv.netns, "eth0", self.netns, mtu=mtu, b_mac=self.mac)
        if ip is not None:
            self.netns.add_addr("eth0", ip)
        if gateway and ip is not None:
            self.netns.add_route("default", via=gateway, dev="eth0")
        if tx_off:
            self.netns.tx_off("eth0")
        hv.ovs.add_port(
            hv.bridge,
            self.port_name,
            ofport=ofport,
            external_ids={"iface-id": self.iface_id, "attached-mac": self.mac},
        )

    def __repr__(self) -> str:
        return f"Vm({self.name!r}, {self.cidr}, {self.mac}, on={self.hv.name!r})"

    @property
    def ofport(self) -> int:
        return self.hv.ovs.ofport(self.port_name)

    def run(self, *cmd: str, check: bool = True, timeout: float = 30.0):
        return self.netns.run(*cmd, check=check, timeout=timeout)

    def flush_neighbors(self) -> None:
        self.netns.ip("neigh", "flush", "dev", "eth0")

    def ping(
        self,
        dst: str,
        count: int = 3,
        *,
        interval: float = 0.2,
        wait: float = 1.0,
        deadline: float | None = None,
        size: int | None = None,
        ttl: int | None = None,
    ) -> PingResult:
        """Ping and parse the output (never raises on loss; check the result)."""
        argv = ping_argv(
            dst, count, interval=interval, wait=wait, deadline=deadline, size=size, ttl=ttl
        )
        limit = (deadline or count * (interval + wait)) + 10
        proc = self.netns.run(*argv, check=False, timeout=limit)
        return PingResult.parse(proc.stdout + proc.stderr, proc.returncode)

    def start_ping(
        self, dst: str, count: int = 100, *, interval: float = 0.1, wait: float = 1.0
    ) -> BackgroundPing:
        """Ping in the background; collect with .result() (or .stop() to end early)."""
        argv = ping_argv(dst, count, interval=interval, wait=wait)
        return BackgroundPing(
            self.netns.popen(*argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        )

    def tcp_transfer(
        self, to_vm: Vm, nbytes: int, *, port: int = 5001, timeout: float = 60.0
    ) -> TransferResult:
        """Send `nbytes` of random data to `to_vm` over TCP; sha256 taken on both ends."""
        return run_transfer(
            self.netns,
            to_vm.netns,
            to_vm.ip,
            nbytes,
            port=port,
            timeout=timeout,
            python=sys.executable,
        )


class Lab:
    """Owner of everything a test builds; `close()` removes it all, even after errors.

    Names: namespaces are `<prefix><name>` (keep them within 15 characters), run
    directories live under `<base_dir>/<prefix>/`.
    """

    def __init__(self, prefix: str | None = None, base_dir: Path = BASE_DIR):
        self.prefix = prefix or new_prefix()
        if not self.prefix.endswith("-") or len(self.prefix) < 4:
            raise ValueError(f"lab prefix {self.prefix!r}: use something like 'vl1a2b-'")
        self.base_dir = base_dir
        self.dir = lab_dir(self.prefix, base_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        # Lets cleanup_orphans() tell a crashed run's lab from a live one.
        write_pidfile(self.dir / "owner.pid", os.getpid())
        self._cleanups: list[Callable[[], object]] = []
        self.hypervisors: dict[str, Hypervisor] = {}
        self.vms: dict[str, Vm] = {}
        self.closed = False

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def logs_kept_on_failure(self, label: str) -> Iterator[Lab]:
        """`with Lab().logs_kept_on_failure("x") as lab:` closes the lab on the way out,
        and when the block raises copies every log to `base_dir/failed-<label>` first."""
        try:
            yield self
        except BaseException:
            self.collect_logs(self.base_dir / f"failed-{label}")
            raise
        finally:
            self.close()

    def __repr__(self) -> str:
        return f"Lab({self.prefix!r})"

    # --- building ------------------------------------------------------------------------

    def ns_name(self, name: str) -> str:
        full = f"{self.prefix}{name}"
        if len(full) > 15:
            raise ValueError(f"namespace name {full!r} is longer than 15 characters")
        return full

    def add_netns(self, name: str) -> Netns:
        ns = Netns(self.ns_name(name))
        # Registered before creation: a half-built namespace is still removed.
        self.on_close(ns.delete)
        return ns.create()

    def add_hypervisor(
        self, name: str, dpid: int | str, *, bridge: str = "br-int", controller: str | None = None
    ) -> Hypervisor:
        hv = Hypervisor(self, name, dpid, bridge=bridge, controller=controller)
        self.hypervisors[name] = hv
        return hv

    def add_underlay(self, name: str = "ul", mtu: int = UNDERLAY_MTU) -> Underlay:
        return Underlay(self, name, mtu)

    def add_linux_host(self, name: str) -> LinuxHost:
        """A plain Linux machine (namespace) to attach to segments, see `LinuxHost`."""
        return LinuxHost(self, name)

    def add_vm(self, hv: Hypervisor, name: str, mac: str, ip: str | None, **kwargs) -> Vm:
        """See `Vm` for the keyword arguments (gateway, mtu, ofport, iface_id, ...);
        ip=None leaves eth0 without an address (for a DHCP client)."""
        vm = Vm(self, hv, name, mac, ip, **kwargs)
        self.vms[name] = vm
        return vm

    def on_close(self, cleanup: Callable[[], object]) -> None:
        """Run `cleanup` on close (last registered runs first), e.g. a service's stop."""
        self._cleanups.append(cleanup)

    # --- tearing down --------------------------------------------------------------------

    def collect_logs(self, dest: Path) -> None:
        """Copy every log file of the lab to `dest` (call before close, e.g. on failure)."""
        for log in self.dir.rglob("*.log"):
            target = dest / log.relative_to(self.dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(log, target)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        errors: list[BaseException] = []
        while self._cleanups:
            try:
                self._cleanups.pop()()
            except Exception as exc:  # keep going: the rest must still be removed
                errors.append(exc)
        # Whatever a failed step left behind still carries our prefix.
        cleanup_stale(self.prefix, self.base_dir)
        if errors:
            raise RuntimeError(f"lab {self.prefix} cleanup had errors: {errors!r}") from errors[0]


def _stop_recorded(pidfile: Path) -> str | None:
    """Stop the process a pidfile names, if it is still the same process."""
    recorded = read_pidfile(pidfile)
    if not recorded or pidfile.name == "owner.pid":
        return None
    pid, started = recorded
    # OVS pidfiles hold only the PID; its command line names the run directory.
    marker = None if started is not None else str(pidfile.parent)
    if same_process(pid, started, marker):
        terminate(pid, timeout=5.0)
        return f"pid {pid} ({pidfile})"
    return None


def cleanup_stale(prefix: str, base_dir: Path = BASE_DIR) -> list[str]:
    """Remove what a lab with `prefix` left behind: processes recorded in its pidfiles,
    namespaces named `<prefix>*` (and processes inside them), its run directory.
    Returns what was removed."""
    if len(prefix) < 4:
        raise ValueError(f"refusing to clean up with the short prefix {prefix!r}")
    removed: list[str] = []
    directory = lab_dir(prefix, base_dir)
    if directory.exists():
        # Services first (they use OVS and the namespaces), vswitchd before ovsdb-server.
        pidfiles = sorted(directory.rglob("*.pid"), key=lambda p: "ovsdb-server" in p.name)
        removed += [r for p in pidfiles if (r := _stop_recorded(p))]
    for name in list_netns():
        if name.startswith(prefix):
            Netns(name).delete()
            removed.append(f"netns {name}")
    if directory.exists():
        shutil.rmtree(directory, ignore_errors=True)
        removed.append(f"dir {directory}")
    return removed


def cleanup_orphans(base_dir: Path = BASE_DIR) -> list[str]:
    """cleanup_stale() every lab under `base_dir` whose owning process has died."""
    removed: list[str] = []
    if not base_dir.exists():
        return removed
    for directory in base_dir.iterdir():
        owner = read_pidfile(directory / "owner.pid")
        # Only labs whose recorded owner is gone: a directory without owner.pid may be
        # one that another run is creating right now.
        if owner and start_time(owner[0]) != owner[1]:
            removed += cleanup_stale(f"{directory.name}-", base_dir)
    return removed
