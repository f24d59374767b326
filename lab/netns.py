"""Network namespaces, veth pairs and addresses, driven through `ip` and `ethtool`.

A namespace is addressed by name; `None` means the root namespace, so the same
helpers serve both. Interface names must fit Linux's IFNAMSIZ (15 characters).
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from lab.proc import is_alive, run, terminate

NETNS_DIR = Path("/run/netns")
IFNAMSIZ = 15


def ns_argv(ns: str | None, cmd: Sequence[str]) -> list[str]:
    """The argv that runs `cmd` inside namespace `ns` (unchanged for the root namespace)."""
    return ["ip", "netns", "exec", ns, *cmd] if ns else list(cmd)


def list_netns() -> list[str]:
    try:
        return sorted(p.name for p in NETNS_DIR.iterdir())
    except FileNotFoundError:
        return []


def check_ifname(name: str) -> str:
    if not name or len(name) > IFNAMSIZ:
        raise ValueError(f"interface name {name!r} must be 1..{IFNAMSIZ} characters")
    return name


class Netns:
    """A named network namespace; create() brings up its loopback."""

    def __init__(self, name: str):
        if "/" in name or not name:
            raise ValueError(f"bad namespace name {name!r}")
        self.name = name

    def __repr__(self) -> str:
        return f"Netns({self.name!r})"

    def exists(self) -> bool:
        return (NETNS_DIR / self.name).exists()

    def create(self) -> Netns:
        run(["ip", "netns", "add", self.name])
        self.ip("link", "set", "lo", "up")
        return self

    def delete(self) -> None:
        """Kill what still runs inside, then delete the namespace (and its interfaces)."""
        if not self.exists():
            return
        for pid in self.pids():
            # Anything inside a namespace we created is ours (an `ip netns exec` child).
            if is_alive(pid):
                terminate(pid, timeout=3.0)
        run(["ip", "netns", "del", self.name], check=False)

    def pids(self) -> list[int]:
        proc = run(["ip", "netns", "pids", self.name], check=False)
        return [int(p) for p in proc.stdout.split() if p.isdigit()]

    def argv(self, *cmd: str) -> list[str]:
        return ns_argv(self.name, cmd)

    def run(
        self,
        *cmd: str,
        check: bool = True,
        timeout: float = 30.0,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return run(self.argv(*cmd), check=check, timeout=timeout, input=input, env=env)

    def popen(self, *cmd: str, **kwargs) -> subprocess.Popen:
        """Start `cmd` in the namespace. `ip netns exec` execs the command, so the
        returned Popen's pid is the command's own pid."""
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.Popen(self.argv(*cmd), **kwargs)

    def ip(self, *args: str, check: bool = True) -> str:
        return run(["ip", "-n", self.name, *args], check=check).stdout

    # --- links and addresses -------------------------------------------------------------

    def link_exists(self, dev: str) -> bool:
        return run(["ip", "-n", self.name, "link", "show", dev], check=False).returncode == 0

    def set_link(
        self, dev: str, *, up: bool = True, mtu: int | None = None, mac: str | None = None
    ) -> None:
        args = ["link", "set", "dev", dev]
        if mac:
            args += ["address", mac]
        if mtu:
            args += ["mtu", str(mtu)]
        self.ip(*args, "up" if up else "down")

    def add_addr(self, dev: str, cidr: str) -> None:
        self.ip("addr", "replace", cidr, "dev", dev)

    def add_route(self, dest: str, via: str | None = None, dev: str | None = None) -> None:
        args = ["route", "replace", dest]
        if via:
            args += ["via", via]
        if dev:
            args += ["dev", dev]
        self.ip(*args)

    def add_neigh(self, ip: str, mac: str, dev: str) -> None:
        self.ip("neigh", "replace", ip, "lladdr", mac, "dev", dev, "nud", "permanent")

    def mac_of(self, dev: str) -> str:
        # /sys is remounted per namespace by `ip netns exec`, so read it from inside.
        return self.run("cat", f"/sys/class/net/{dev}/address").stdout.strip()

    def tx_off(self, dev: str = "eth0") -> None:
        """The userspace datapath cannot complete checksums a veth left to offload:
        without this TCP through OVS netdev stalls on bad checksums."""
        self.run("ethtool", "-K", dev, "tx", "off")

    def add_linux_bridge(self, name: str, mtu: int | None = None) -> None:
        self.ip("link", "add", check_ifname(name), "type", "bridge")
        self.set_link(name, mtu=mtu)


def add_veth(
    a: str,
    a_ns: Netns,
    b: str,
    b_ns: Netns,
    *,
    mtu: int | None = None,
    a_mac: str | None = None,
    b_mac: str | None = None,
    up: bool = True,
) -> None:
    """Create a veth pair with its ends directly in two namespaces (never in the root
    namespace, so a crash cannot leak an interface there)."""
    args = ["ip", "link", "add", check_ifname(a), "netns", a_ns.name]
    if mtu:
        args += ["mtu", str(mtu)]
    if a_mac:
        args += ["address", a_mac]
    args += ["type", "veth", "peer", "name", check_ifname(b), "netns", b_ns.name]
    if mtu:
        args += ["mtu", str(mtu)]
    if b_mac:
        args += ["address", b_mac]
    run(args)
    if up:
        a_ns.set_link(a)
        b_ns.set_link(b)
