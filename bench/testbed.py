"""The test bed of the vna benchmarks (bench.vnabench, bench.security_groups): a lab of
real and model-only datapaths written through vnmgr's RPC, and the probes that watch its
switches (flow dumps, `ovs-ofctl monitor`, the vna's full-sync log line).

Topology per size N (one lab, removed on exit):
  - two real hypervisors h1, h2 (namespace + private OVS, netdev, VXLAN transport),
    each with its vna; h1 is the datapath under test;
  - R model-only datapaths (no OVS) with a host interface (underlay IP), so that
    interfaces they own are *remote vifs* for h1 and still produce flows there;
  - M = N/10 virtual networks, joined to h1 and h2;
  - N vif interfaces, 10 per network with one IP lease each: a handful are real VM
    namespaces plugged into h1/h2 (LOCAL_VMS), all others are owned by h2 or the
    model-only datapaths (remote vifs);
  - ROUTERS distributed routers, each joining two networks;
  - one more vif per network owned by h1 but bound nowhere (a VM expected there), so
    that h1's slice (vnet.slice) holds every network: h1 is the datapath at the limit,
    with the flows of all N interfaces, as before slicing; h2's slice holds only the
    networks of its VMs and what their router reaches.  The convergence network has
    such a vif on h1 and on h2.
The model is written through vnmgr's RPC (the same path the webapi uses).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from bench.common import desired_flows, metric, metrics
from lab import Hypervisor, Lab
from lab.services import ServiceHandle, Services
from vnet.messaging import RpcClient

OF_PORT = 6633
REMOTE_DATAPATHS = 8
ROUTERS = 4
UNDERLAY = ipaddress.IPv4Network("192.168.100.0/24")
UNDERLAY_NET = "nw-underlay"
CONV_NET = "nw-conv"
FULL_SYNC_RE = re.compile(
    r"^(\S+)Z .*full sync of (\w+): (\d+) desired, (\d+) installed, \+(\d+) -(\d+) in ([\d.]+)s"
)


# Local VMs: (name, hypervisor, network index, host index in network). vm1/vm2 are on
# h1 in network 0, vm3 on h2 in network 0: vm1->vm2 is local, vm1->vm3 crosses VXLAN.
LOCAL_VMS = [("vm1", "h1", 0, 0), ("vm2", "h1", 0, 1), ("vm3", "h2", 0, 2),
             ("vm4", "h1", 1, 0), ("vm5", "h1", 2, 0), ("vm6", "h2", 1, 1)]



def dump_flows_raw(hv: Hypervisor, bridge: str = "br-int", stats: bool = False) -> list[str]:
    args = ["--no-names", "dump-flows", bridge]
    if not stats:
        args.insert(0, "--no-stats")
    out = hv.ovs.ofctl(*args, timeout=120)
    return [ln.strip() for ln in out.splitlines() if "cookie=" in ln or "priority=" in ln]


def parse_ts(stamp: str) -> float:
    return dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f").replace(
        tzinfo=dt.UTC).timestamp()


def wait_full_sync(handle: ServiceHandle, offset: int, timeout: float) -> dict[str, Any]:
    """The first `full sync` line the vna writes after byte `offset` of its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not handle.alive():
            raise RuntimeError(f"{handle.name} died: {handle.log_text()[-2000:]}")
        with open(handle.log_path, "rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
        for line in text.splitlines():
            m = FULL_SYNC_RE.match(line)
            if m:
                return {"wall": parse_ts(m.group(1)), "desired": int(m.group(3)),
                        "installed": int(m.group(4)), "added": int(m.group(5)),
                        "deleted": int(m.group(6)), "seconds": float(m.group(7)),
                        "line": line}
        time.sleep(0.02)
    raise TimeoutError(f"no full sync from {handle.name} within {timeout}s")


class FlowMonitor:
    """`ovs-ofctl monitor` on a bridge: the switch itself reports every flow it adds,
    the moment the change is committed. We stamp each line as it arrives and wake
    whoever waits for a MAC address to appear in an added flow."""

    def __init__(self, hv: Hypervisor, bridge: str = "br-int") -> None:
        self.proc = subprocess.Popen(
            # stdbuf: ovs-ofctl's stdout is a pipe here, so it would be block-buffered.
            ["stdbuf", "-oL", "ovs-ofctl", "-O", "OpenFlow13", "monitor", bridge,
             "watch:!initial,!own"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
            env={**os.environ, **hv.ovs.env}, stdin=subprocess.DEVNULL)
        self._lock = threading.Lock()
        self._waiting: dict[str, threading.Event] = {}
        self._seen: dict[str, float] = {}
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def expect(self, mac: str) -> threading.Event:
        event = threading.Event()
        with self._lock:
            self._waiting[mac] = event
        return event

    def seen_at(self, mac: str) -> float | None:
        with self._lock:
            return self._seen.get(mac)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            now = time.monotonic()
            if "ADDED" not in line and "MODIFIED" not in line:
                continue
            with self._lock:
                for mac in [m for m in self._waiting if m in line]:
                    self._seen[mac] = now
                    self._waiting.pop(mac).set()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


# ---------------------------------------------------------------------------- the cloud

@dataclass
class Bed:
    lab: Lab
    n: int
    services: Services
    rpc: RpcClient
    hvs: dict[str, Hypervisor] = field(default_factory=dict)
    vnas: dict[str, ServiceHandle] = field(default_factory=dict)
    vms: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    populate_seconds: float = 0.0
    conv_datapath: str = ""  # the model-only datapath of the convergence interfaces

    def call(self, op: str, resource: str, target: str | None = None, **params: Any) -> Any:
        """A vnmgr write; `uuid=` in params names the row to create."""
        return self.rpc.call(op, resource, target, params, timeout_ms=60000)

    def start_vna(self, name: str) -> tuple[ServiceHandle, int]:
        """Start (or restart) the vna of `name`; returns it and its log offset at start."""
        log_path = self.services.run_dir / f"vna-{name}.log"
        offset = log_path.stat().st_size if log_path.exists() else 0
        handle = self.services.start_vna(self.hvs[name], f"vna{name}", of_port=OF_PORT,
                                         transport="tunnel", wait_connected=False,
                                         VNET_VNA_DATAPATH_TYPE="netdev")
        self.vnas[name] = handle
        return handle, offset


def network_cidr(i: int) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(f"10.{i // 256}.{i % 256}.0/24")


def build(lab: Lab, n: int) -> Bed:
    services = Services(lab)
    services.start_vnmgr()
    bed = Bed(lab, n, services, services.rpc(60000))
    started = time.monotonic()
    bed.call("create", "networks", uuid=UNDERLAY_NET, ipv4_network=str(UNDERLAY.network_address),
             ipv4_prefix=UNDERLAY.prefixlen, network_mode="physical")
    # Datapaths: two real hypervisors and REMOTE_DATAPATHS model-only ones.
    datapaths = []
    for index in range(1, 3 + REMOTE_DATAPATHS):
        real = index <= 2
        name = f"h{index}" if real else f"r{index - 2}"
        dpid = 0x0000BE4C00000000 + index
        ip = str(UNDERLAY.network_address + index)
        mac = f"02:fe:00:00:00:{index:02x}"
        if real:
            hv = lab.add_hypervisor(name, dpid)
            if "ul" not in bed.counts:
                bed.counts["ul"] = 1
                bed.underlay = lab.add_underlay()  # type: ignore[attr-defined]
            hv.attach_underlay(bed.underlay, f"{ip}/{UNDERLAY.prefixlen}",  # type: ignore
                               mode="br-phy", mac=mac)
            bed.hvs[name] = hv
        bed.call("create", "datapaths", uuid=f"dp-{name}", dpid=f"0x{dpid:016x}",
                 node_id=f"vna{name}")
        bed.call("create", "interfaces", uuid=f"if-{name}ul", mode="host",
                 owner_datapath_uuid=f"dp-{name}", port_name="ul0" if real else None,
                 mac_address=mac, network_uuid=UNDERLAY_NET, ipv4_address=ip)
        datapaths.append(f"dp-{name}")
    # Real hypervisors know each other's underlay MAC: no lost first packet.
    bed.hvs["h1"].seed_tunnel_neighbor(bed.hvs["h2"])
    bed.hvs["h2"].seed_tunnel_neighbor(bed.hvs["h1"])
    # Vifs of model-only datapaths: bound there by a port report on their behalf (no vna
    # runs for them), so every real datapath forwards to them. The last one is kept for
    # the convergence benchmark's interfaces.
    remote_owners = datapaths[2:-1] or datapaths[2:]
    claims: dict[str, list[str]] = {dp: [] for dp in remote_owners}

    networks = max(1, n // 10)
    local = {(net, host): (vm, hv) for vm, hv, net, host in LOCAL_VMS if net < networks}
    interfaces = 0
    for i in range(networks):
        cidr = network_cidr(i)
        nw = f"nw-{i:05d}"
        bed.call("create", "networks", uuid=nw, ipv4_network=str(cidr.network_address),
                 ipv4_prefix=24, network_mode="virtual")
        for hv in ("h1", "h2"):
            bed.call("create", "datapath_networks", datapath_uuid=f"dp-{hv}", network_uuid=nw,
                     broadcast_mac_address=f"02:fd:{int(hv[1]):02x}:{i >> 16 & 255:02x}:"
                                           f"{i >> 8 & 255:02x}:{i & 255:02x}",
                     interface_uuid=f"if-{hv}ul")
        for j in range(10):
            if interfaces >= n:
                break
            ip = str(cidr.network_address + 10 + j)
            mac = f"12:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}:00:{j:02x}"
            if (i, j) in local:
                vm, hv = local[(i, j)]
                bed.call("create", "interfaces", uuid=f"if-{vm}", mode="vif",
                         owner_datapath_uuid=f"dp-{hv}", port_name=vm, mac_address=mac,
                         network_uuid=nw, ipv4_address=ip)
                bed.vms[vm] = lab.add_vm(bed.hvs[hv], vm, mac, f"{ip}/24", iface_id=f"if-{vm}",
                                         mtu=1450)
            else:
                owner = remote_owners[(i * 10 + j) % len(remote_owners)]
                bed.call("create", "interfaces", uuid=f"if-{i:05d}x{j}", mode="vif",
                         owner_datapath_uuid=owner, mac_address=mac, network_uuid=nw,
                         ipv4_address=ip)
                claims[owner].append(f"if-{i:05d}x{j}")
            interfaces += 1
        expect(bed, "h1", nw, f"if-{i:05d}h1", cidr.network_address + 250,
               f"16:fe:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}:01")
    for dp, uuids in claims.items():
        report_ports(bed, dp, uuids)
    # Routers: router k joins networks 2k and 2k+1 (gateway .1 on each).
    routers = 0
    for k in range(min(ROUTERS, networks // 2)):
        rl = f"rl-{k}"
        bed.call("create", "route_links", uuid=rl, mac_address=f"02:00:10:00:00:{k + 1:02x}")
        for pos, i in enumerate((2 * k, 2 * k + 1), start=1):
            cidr = network_cidr(i)
            port = f"if-rl{k}p{pos}"
            bed.call("create", "interfaces", uuid=port, mode="simulated",
                     network_uuid=f"nw-{i:05d}", mac_address=f"02:00:00:00:{k + 1:02x}:{pos:02x}",
                     ipv4_address=str(cidr.network_address + 1), enable_routing="true")
            bed.call("create", "routes", uuid=f"r-{k}x{pos}", interface_uuid=port,
                     network_uuid=f"nw-{i:05d}", route_link_uuid=rl,
                     ipv4_network=str(cidr.network_address), ipv4_prefix=24)
        routers += 1
    # The network the convergence benchmark adds interfaces to (spans h1 and h2).
    bed.call("create", "networks", uuid=CONV_NET, ipv4_network="10.250.0.0", ipv4_prefix=16,
             network_mode="virtual")
    for hv in ("h1", "h2"):
        bed.call("create", "datapath_networks", datapath_uuid=f"dp-{hv}", network_uuid=CONV_NET,
                 broadcast_mac_address=f"02:fc:{int(hv[1]):02x}:00:00:01",
                 interface_uuid=f"if-{hv}ul")
        expect(bed, hv, CONV_NET, f"if-conv{hv}", ipaddress.IPv4Address(f"10.250.255.{int(hv[1])}"),
               f"16:fd:00:00:00:{int(hv[1]):02x}")
    bed.conv_datapath = datapaths[-1]
    bed.populate_seconds = time.monotonic() - started
    bed.counts = {"interfaces": interfaces, "local_vifs": len(bed.vms), "networks": networks,
                  "routers": routers, "datapaths": len(datapaths),
                  "model_only_datapaths": REMOTE_DATAPATHS}
    return bed


def expect(bed: Bed, hv: str, network: str, uuid: str, ip: ipaddress.IPv4Address,
           mac: str) -> None:
    """A vif owned by `hv` that no port carries yet: it puts `network` in hv's slice."""
    bed.call("create", "interfaces", uuid=uuid, mode="vif", owner_datapath_uuid=f"dp-{hv}",
             mac_address=mac, network_uuid=network, ipv4_address=str(ip))


def report_ports(bed: Bed, datapath: str, uuids: list[str]) -> None:
    """The port report a vna would send for `datapath` (vnmgr.handlers.bindings): its
    complete set of claims, here one port per interface."""
    ports = [{"interface_uuid": u, "port_name": f"p{n}", "port_number": n + 1}
             for n, u in enumerate(uuids)]
    bed.call("report", "active_interfaces", datapath_uuid=datapath, ports=ports)


def wait_settled(hv: Hypervisor, timeout: float = 120.0) -> list[str]:
    """Wait until the switch holds exactly the vna's desired flows (its `vnet_vna_flows`
    metric) and no flow_mod is being sent; returns the installed flows."""
    deadline, last, installed = time.monotonic() + timeout, None, -1
    while time.monotonic() < deadline:
        sample = metrics(hv)
        flows = dump_flows_raw(hv)
        installed = len(flows)
        state = (desired_flows(sample), metric(sample, "vnet_vna_flow_mods_sent_total"))
        if installed == state[0] and state == last:
            return flows
        last = state
        time.sleep(0.5)
    raise RuntimeError(f"{hv.name} never settled: {installed} installed vs {last}")
