"""The way out (issue 12): a router port on a physical network, a default route through
an upstream router, static NAT, SNAT and port forwarding, on real Open vSwitch, with
ping and TCP between VM namespaces and plain Linux machines outside the cloud, driven
over HTTP. OpenVNet's `router_p2v` and `wanedge` datasets, on two hypervisors.

One cloud per transport:

    h1: vm1 10.1.0.11 (nw-a)                        h2: vm2 10.1.0.12 (nw-a)
                                                        vm3 10.2.0.13 (nw-b)
                                                        vmp 172.16.0.10 (nw-pub, physical)
    rl-1: 10.1.0.1 (nw-a), 10.2.0.1 (nw-b), and once the feature fixture `p2v` ran,
          if-rpub 172.16.0.4 on nw-pub owned by h1 (the gateway datapath), routes
          172.16.0.0/24 and 0.0.0.0/0 via 172.16.0.1.

    public segment 172.16.0.0/24 (a Linux bridge): h1 phys0, h2 phys0,
          ext 172.16.0.100 (no route to 10/8 unless a case gives it one),
          up 172.16.0.1 / 192.0.2.1 (upstream router, forwarding)
    wan segment 192.0.2.0/24: up, far 192.0.2.50 (default via 192.0.2.1)

Every VM, ext and far run a `TcpWho` server on port 80: a connection tells the client
which source address the server saw, so both the translation and the way back are
checked by one probe. Each test undoes its model and namespace changes, even when it
fails.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from lab import Lab, LinuxHost, Underlay
from lab.capture import capture
from lab.cloud import Cloud
from lab.traffic import TcpStream, TcpWho, tcp_who
from tests.e2e.vna_probe import agents_caught_up
from vnctl.api import Api, HttpError

TRANSPORTS = ["tunnel", "mac2mac"]
VMS = {  # name: (host, network, address)
    "vm1": ("h1", "nw-a", "10.1.0.11"),
    "vm2": ("h2", "nw-a", "10.1.0.12"),
    "vm3": ("h2", "nw-b", "10.2.0.13"),
    "vmp": ("h2", "nw-pub", "172.16.0.10"),  # a VM straight on the physical network
}
PUB = "172.16.0.0/24"
EXT, UP, UP_WAN, FAR = "172.16.0.100", "172.16.0.1", "192.0.2.1", "192.0.2.50"
EXT_MAC, UP_MAC = "02:ee:00:00:00:64", "02:ee:00:00:00:01"
RPUB, RPUB_MAC = "172.16.0.4", "02:00:22:00:00:04"
GLOBAL1, GLOBAL2 = "172.16.0.50", "172.16.0.51"
WHO = 80
CONVERGE = 5.0  # model change -> traffic; polled, elapsed printed


def ip(vm: str) -> str:
    return VMS[vm][2]


@dataclass
class World:
    cloud: Cloud
    pub: Underlay
    ext: LinuxHost
    up: LinuxHost
    far: LinuxHost
    who: dict[str, TcpWho] = field(default_factory=dict)

    @property
    def api(self) -> Api:
        assert self.cloud.api is not None
        return self.cloud.api

    @property
    def transport(self) -> str:
        return self.cloud.transport

    def phys(self, host: str):
        """(namespace, port) of `host`'s port on the public segment."""
        return self.cloud.hosts[host].hv.netns, "phys0"

    def vm(self, name: str):
        return self.cloud.vms[name]

    def netns(self, name: str):
        return {"ext": self.ext, "up": self.up, "far": self.far}[name].netns \
            if name in ("ext", "up", "far") else self.cloud.vms[name].netns


# ------------------------------------------------------------------ evidence, waiting

def evidence(w: World) -> str:
    """What the feature's bugs show in: both bridges' flows (with counters, the
    firewall tables left out), OVS's conntrack, the outside hosts' neighbours."""
    out = []
    for name, host in w.cloud.hosts.items():
        flows = [f for f in host.hv.dump_flows(keep_counters=True)
                 if not re.search(r"table=7[0-4]|table=1[246],", f)]
        ct = host.hv.ovs.appctl("dpctl/dump-conntrack", check=False).splitlines()
        out.append(f"--- {name} br-int ({len(flows)} flows)\n" + "\n".join(flows[:400]))
        out.append(f"--- {name} conntrack ({len(ct)})\n" + "\n".join(ct[:40]))
    for h in (w.ext, w.up):
        out.append(f"--- {h.name} neighbours\n" + h.netns.ip("neigh", "show"))
    return "\n".join(out)


def wait_for(w: World, check: Callable[[], object], what: str,
             timeout: float = CONVERGE) -> object:
    """Poll `check` until it returns something true; its last value on failure."""
    started = time.monotonic()
    while True:
        value = check()
        elapsed = time.monotonic() - started
        if value:
            print(f"[{w.transport}] {what}: after {elapsed:.2f}s")
            return value
        if elapsed > timeout:
            raise AssertionError(f"{what} ({w.transport}): not within {timeout:g}s, "
                                 f"last: {value!r}\n" + evidence(w))
        time.sleep(0.2)


def who(w: World, src: str, dst_ip: str, port: int = WHO, timeout: float = 2.0):
    return tcp_who(w.netns(src), dst_ip, port, timeout=timeout)


def assert_seen_as(w: World, src: str, dst_ip: str, expected: str, port: int = WHO,
                   what: str = "", converge: bool = False) -> None:
    """`src` connects to dst_ip:port and the server there saw it come from `expected`
    (and the answer made it back to `src`)."""
    if converge:
        wait_for(w, lambda: who(w, src, dst_ip, port, timeout=0.5).seen_as == expected,
                 f"{what or src} -> {dst_ip}:{port} seen as {expected}")
    r = who(w, src, dst_ip, port)
    assert r.seen_as == expected, \
        f"{what} ({w.transport}): {src} -> {dst_ip}:{port}: expected to be seen as " \
        f"{expected}, got {r.output!r}\n" + evidence(w)


def assert_ping(w: World, src: str, dst_ip: str, what: str = "", count: int = 3) -> None:
    node = {"ext": w.ext, "up": w.up, "far": w.far}.get(src) or w.vm(src)
    r = node.ping(dst_ip, count=count, wait=1.0)
    assert r.ok and not r.duplicates, \
        f"{what} ({w.transport}): ping {src} -> {dst_ip}: {r.output}\n" + evidence(w)


def lines_with(lines: list[str], *needles: str) -> list[str]:
    return [line for line in lines if all(n in line for n in needles)]


# ------------------------------------------------------------------ the lab

@pytest.fixture(scope="module", params=TRANSPORTS)
def world(request: pytest.FixtureRequest, e2e_environment: None) -> Iterator[World]:
    with Lab().logs_kept_on_failure(f"external-{request.param}") as lab:
        c = Cloud(lab, transport=request.param).start()
        c.add_host("h1")
        c.add_host("h2")
        c.add_network("nw-a", "10.1.0.0/24")
        c.add_network("nw-b", "10.2.0.0/24")
        c.add_router("rl-1", {"nw-a": "10.1.0.1", "nw-b": "10.2.0.1"})
        # The public segment: both hypervisors' physical ports, the external host and
        # the upstream router; behind the router the "internet" (far).
        pub = lab.add_underlay("pub", mtu=1500)
        wan = lab.add_underlay("wan", mtu=1500)
        c.add_network("nw-pub", PUB, mode="physical")
        for host in ("h1", "h2"):
            c.add_physical_port(host, pub, "nw-pub")
        ext = lab.add_linux_host("ext")
        ext.attach(pub, f"{EXT}/24", mac=EXT_MAC)
        up = lab.add_linux_host("up")
        up.attach(pub, f"{UP}/24", mac=UP_MAC)
        up.attach(wan, f"{UP_WAN}/24", ifname="eth1")
        up.enable_forwarding()
        far = lab.add_linux_host("far")
        far.attach(wan, f"{FAR}/24")
        far.add_route("default", UP_WAN)
        for name, (host, network, address) in VMS.items():
            c.add_vm(host, name, network, address)
        w = World(c, pub, ext, up, far)
        for name in (*VMS, "ext", "far"):
            w.who[name] = TcpWho(w.netns(name), WHO, lab.dir / "who" / f"{name}.log")
            lab.on_close(w.who[name].stop)
        c.wait_ping("vm1", ip("vm3"), timeout=15)
        c.wait_ping("vmp", EXT, timeout=15)
        yield w


def test_lab_outside_world_works_without_the_feature(world: World) -> None:
    """The lab itself, before any router port exists: the outside hosts reach each other
    through the upstream router, a VM on the physical network (h2) reaches them as any
    host on the segment, both hypervisors' ports see the segment's broadcasts, and the
    external host has no way to the private networks."""
    w = world
    assert_ping(w, "up", EXT, "segment")
    assert_ping(w, "up", FAR, "wan segment")
    w.ext.add_route("192.0.2.0/24", UP)
    try:
        assert_ping(w, "ext", FAR, "ext -> far through the upstream router")
        assert_seen_as(w, "ext", FAR, EXT, what="ext -> far")
    finally:
        w.ext.del_route("192.0.2.0/24")
    assert w.ext.netns.run("ip", "route", "get", ip("vm1"), check=False).returncode != 0, \
        "ext must have no route to the private networks"

    w.ext.flush_neighbors()
    h1_ns, port = w.phys("h1")
    h2_ns, _ = w.phys("h2")
    with capture(h1_ns, port, "arp") as arp1, capture(h2_ns, port, "arp") as arp2:
        assert_ping(w, "ext", ip("vmp"), "ext -> the VM on the physical network")
    # ext's broadcast reaches both hypervisors' ports; the answer comes from vmp (h2)
    assert lines_with(arp1.lines, f"who-has {ip('vmp')} tell {EXT}"), arp1.lines
    assert lines_with(arp2.lines, f"who-has {ip('vmp')} tell {EXT}"), arp2.lines
    assert lines_with(arp2.lines, f"Reply {ip('vmp')} is-at {w.vm('vmp').mac}"), arp2.lines
    assert w.vm("vmp").mac in w.ext.neighbor(ip("vmp"))
    assert_seen_as(w, "vmp", EXT, ip("vmp"), what="vmp -> ext")
    assert_seen_as(w, "ext", ip("vmp"), EXT, what="ext -> vmp")
    w.vm("vmp").netns.add_route("default", via=UP)
    try:
        assert_ping(w, "vmp", FAR, "vmp -> far through the upstream router")
        assert_seen_as(w, "vmp", FAR, ip("vmp"), what="vmp -> far")
    finally:
        w.vm("vmp").netns.ip("route", "del", "default", check=False)
    assert_seen_as(w, "vm3", ip("vm1"), ip("vm3"), what="routed between the virtual networks")


# ------------------------------------------------------------------ the feature

@pytest.fixture(scope="module")
def p2v(world: World) -> World:
    """rl-1's port on the physical network, owned by h1 (the gateway datapath), its
    network's route and the default route through the upstream router (issue 12)."""
    api = world.api
    api.post("interfaces", uuid="if-rpub", mode="simulated", enable_routing=True,
             owner_datapath_uuid="dp-h1", network_uuid="nw-pub", ipv4_address=RPUB,
             mac_address=RPUB_MAC)
    api.post("routes", uuid="r-pub", interface_uuid="if-rpub", network_uuid="nw-pub",
             route_link_uuid="rl-1", ipv4_network="172.16.0.0", ipv4_prefix=24)
    api.post("routes", uuid="r-default", interface_uuid="if-rpub", network_uuid="nw-pub",
             route_link_uuid="rl-1", ipv4_network="0.0.0.0", ipv4_prefix=0,
             ipv4_gateway=UP)
    return world


class Changes:
    """A test's translations and the routes it gives the outside hosts, undone after it."""

    def __init__(self, w: World) -> None:
        self.w = w
        self.translations: list[str] = []
        self.routes: list[tuple[object, str]] = []
        self.flags: list[tuple[str, str, bool]] = []  # interface, flag, old value

    def flag(self, interface: str, **flags: bool) -> None:
        old = self.w.api.get(f"interfaces/{interface}")
        for name in flags:
            self.flags.append((interface, name, bool(old[name])))
        self.w.api.put(f"interfaces/{interface}", **flags)

    def static(self, uuid: str, *entries: dict) -> None:
        self.w.api.post("translations", uuid=uuid, interface_uuid="if-rpub",
                        mode="static_address")
        self.translations.append(uuid)
        for entry in entries:
            self.w.api.post(f"translations/{uuid}/static_address", **entry)

    def snat(self, uuid: str = "tr-snat") -> None:
        self.w.api.post("translations", uuid=uuid, interface_uuid="if-rpub", mode="snat")
        self.translations.append(uuid)

    def delete(self, uuid: str) -> None:
        self.w.api.delete(f"translations/{uuid}")
        self.translations.remove(uuid)

    def route(self, where: str, dest: str, via: str) -> None:
        ns = self.w.netns(where)
        ns.add_route(dest, via=via)
        self.routes.append((ns, dest))

    def undo(self) -> None:
        for ns, dest in reversed(self.routes):
            ns.ip("route", "del", dest, check=False)
        for uuid in reversed(self.translations):
            try:
                self.w.api.delete(f"translations/{uuid}")
            except HttpError as exc:
                if exc.status != 404:
                    raise
        for interface, name, value in reversed(self.flags):
            self.w.api.put(f"interfaces/{interface}", **{name: value})
        self.w.ext.flush_neighbors()
        self.w.up.flush_neighbors()


@pytest.fixture
def changes(p2v: World) -> Iterator[Changes]:
    ch = Changes(p2v)
    try:
        yield ch
    finally:
        ch.undo()
    assert p2v.api.get("translations")["total_count"] == 0


def static_entry(ingress: str, egress: str, ingress_port: int | None = None,
                 egress_port: int | None = None) -> dict:
    return {"ingress_ipv4_address": ingress, "egress_ipv4_address": egress,
            "ingress_port_number": ingress_port, "egress_port_number": egress_port}




# ------------------------------------------------------------------ (1) router_p2v

def test_p2v_routing_without_nat(p2v: World, changes: Changes) -> None:
    """ext routes 10/8 to the router's port: it reaches the VMs on both hosts by their
    private addresses and they see its own; only h1 answers ARP for the port; a VM on
    h2 leaves for the segment through h1's physical port; a VM on the physical network
    (router_p2v's public VMs) is routed to the virtual networks too."""
    w = p2v
    changes.route("ext", "10.0.0.0/8", RPUB)
    w.ext.flush_neighbors()
    h1_ns, port = w.phys("h1")
    h2_ns, _ = w.phys("h2")
    with capture(h1_ns, port, "arp") as arp1, capture(h2_ns, port, "arp") as arp2:
        wait_for(w, lambda: w.ext.ping(ip("vm1"), wait=0.5).ok, "ext -> vm1 via 172.16.0.4")
    assert RPUB_MAC in w.ext.neighbor(RPUB), \
        f"ext's neighbour entry for the router port: {w.ext.neighbor(RPUB)!r}"
    assert lines_with(arp1.lines, f"Reply {RPUB} is-at {RPUB_MAC}"), \
        f"h1 answers ARP for the router port: {arp1.lines}"
    assert lines_with(arp2.lines, f"who-has {RPUB} tell {EXT}"), \
        f"the request reached h2's port too: {arp2.lines}"
    assert not lines_with(arp2.lines, f"Reply {RPUB}"), \
        f"h2 must not answer for the port h1 owns: {arp2.lines}"

    for vm in ("vm1", "vm2", "vm3"):
        assert_ping(w, "ext", ip(vm), f"ext -> {vm}")
        assert_seen_as(w, "ext", ip(vm), EXT, what=f"ext -> {vm}, no NAT")
        assert_seen_as(w, vm, EXT, ip(vm), what=f"{vm} -> ext, no NAT")

    # vm3 (h2) -> ext: routed on the way through h1, out of h1's physical port only
    with capture(h1_ns, port, f"ip host {EXT}") as p1, \
            capture(h2_ns, port, f"ip host {EXT}") as p2:
        assert_ping(w, "vm3", EXT, "vm3 -> ext (path capture)")
    assert lines_with(p1.lines, f"{RPUB_MAC} > {EXT_MAC}", f"{ip('vm3')} > {EXT}: ICMP echo "
                      "request"), f"h1's port: {p1.lines}"
    assert lines_with(p1.lines, f"{EXT} > {ip('vm3')}: ICMP echo reply"), p1.lines
    assert p2.lines == [], f"h2's physical port carried vm3's traffic: {p2.lines}"

    # A segment that floods every frame (a switch that forgot the router's MAC; here a
    # bridge that learns nothing): h2 sees ext's frames to the router port and must
    # leave them to h1 - routing them too would deliver vm3 a second copy.
    w.pub.netns.ip("link", "set", "br0", "type", "bridge", "ageing_time", "0")
    try:
        with capture(h2_ns, port, f"ether dst {RPUB_MAC}", direction="in") as in2, \
                capture(h2_ns, port, f"ether src {RPUB_MAC}", direction="out") as out2:
            assert_ping(w, "ext", ip("vm3"), "ext -> vm3 (h2) on a flooding segment", count=5)
            assert_ping(w, "vm2", EXT, "vm2 (h2) -> ext on a flooding segment", count=5)
    finally:
        w.pub.netns.ip("link", "set", "br0", "type", "bridge", "ageing_time", "30000")
    assert in2.lines, "the flooding segment brought h2 no frame for the router port"
    assert out2.lines == [], f"h2 sent frames as the router port: {out2.lines}"

    # router_p2v: a VM on the physical network, on h2, to the virtual networks
    changes.route("vmp", "10.0.0.0/8", RPUB)
    for vm in ("vm1", "vm3"):
        assert_ping(w, "vmp", ip(vm), f"vmp (physical, h2) -> {vm}")
        assert_seen_as(w, "vmp", ip(vm), ip("vmp"), what=f"vmp -> {vm}")
        assert_seen_as(w, vm, ip("vmp"), ip(vm), what=f"{vm} -> vmp")


# ------------------------------------------------------------------ (2) default route

def test_default_route_through_the_upstream_router(p2v: World, changes: Changes) -> None:
    """The default route's gateway 172.16.0.1 is not in the model: the vna finds its
    MAC and sends beyond it (without NAT: up routes 10/8 back to the router port)."""
    w = p2v
    changes.route("up", "10.0.0.0/8", RPUB)
    h1_ns, port = w.phys("h1")
    h2_ns, _ = w.phys("h2")
    with capture(h1_ns, port, f"ip host {FAR}") as p1, \
            capture(h2_ns, port, f"ip host {FAR}") as p2:
        wait_for(w, lambda: w.vm("vm3").ping(FAR, count=1, wait=0.5).ok,
                 "vm3 -> far through the default route")
        assert_seen_as(w, "vm3", FAR, ip("vm3"), what="vm3 -> far")
        assert_seen_as(w, "vm1", FAR, ip("vm1"), what="vm1 -> far")
    assert lines_with(p1.lines, f"{RPUB_MAC} > {UP_MAC}", f"{ip('vm3')} > {FAR}"), \
        f"leaves h1 toward the upstream router's MAC: {p1.lines}"
    assert p2.lines == [], f"h2's physical port carried the traffic: {p2.lines}"
    assert RPUB_MAC in w.up.neighbor(RPUB), w.up.neighbor(RPUB)
    # and in from beyond the upstream router
    assert_seen_as(w, "far", ip("vm3"), FAR, what="far -> vm3 through up")
    assert_ping(w, "far", ip("vm1"), "far -> vm1 through up")


# ------------------------------------------------------------------ (3) static NAT

def test_static_nat(p2v: World, changes: Changes) -> None:
    """wanedge: vm1's global address 172.16.0.50, answered for on the segment; in both
    directions, from the segment and from beyond the upstream router (which has no
    route to 10/8); gone with the translation."""
    w = p2v
    assert w.ext.netns.run("ip", "route", "get", ip("vm1"), check=False).returncode != 0
    w.ext.flush_neighbors()
    changes.static("tr-1", static_entry(GLOBAL1, ip("vm1")))
    wait_for(w, lambda: w.ext.ping(GLOBAL1, wait=0.5).ok, "ext -> 172.16.0.50")
    assert RPUB_MAC in w.ext.neighbor(GLOBAL1), \
        f"ARP for the global address: {w.ext.neighbor(GLOBAL1)!r}"
    assert_seen_as(w, "ext", GLOBAL1, EXT, what="ext -> vm1 by its global address")
    assert w.who["vm1"].peers()[-1] == EXT
    with capture(w.ext.netns, "eth0", "ip") as seen:
        assert_ping(w, "vm1", EXT, "vm1 -> ext")
        assert_seen_as(w, "vm1", EXT, GLOBAL1, what="vm1 -> ext leaves as 172.16.0.50")
    assert lines_with(seen.lines, f"{GLOBAL1} > {EXT}: ICMP echo request"), seen.lines
    assert not lines_with(seen.lines, ip("vm1")), \
        f"vm1's private address on the segment: {seen.lines}"
    # beyond the upstream router, which knows nothing of 10/8
    assert_seen_as(w, "vm1", FAR, GLOBAL1, what="vm1 -> far")
    assert_seen_as(w, "far", GLOBAL1, FAR, what="far -> vm1 by its global address")

    changes.delete("tr-1")
    wait_for(w, lambda: not who(w, "ext", GLOBAL1, timeout=0.5),
             "translation deleted: 172.16.0.50 no longer reaches vm1")
    w.ext.flush_neighbors()
    assert not w.ext.ping(GLOBAL1, wait=1.0).ok
    assert RPUB_MAC not in w.ext.neighbor(GLOBAL1), \
        f"172.16.0.50 still answered after its translation was deleted: " \
        f"{w.ext.neighbor(GLOBAL1)!r}"


# ------------------------------------------------------------------ (4) SNAT

def test_snat(p2v: World, changes: Changes) -> None:
    """VMs without a global address leave as the router port's 172.16.0.4, vm1 with a
    static one as its own; replies come back."""
    w = p2v
    changes.snat()
    changes.static("tr-1", static_entry(GLOBAL1, ip("vm1")))
    assert_seen_as(w, "vm2", EXT, RPUB, what="vm2 (h2) -> ext through SNAT", converge=True)
    with capture(w.ext.netns, "eth0", "ip") as seen:
        assert_seen_as(w, "vm3", EXT, RPUB, what="vm3 (h2, nw-b) -> ext through SNAT")
        assert_seen_as(w, "vm2", EXT, RPUB, what="vm2 -> ext through SNAT")
        assert_seen_as(w, "vm1", EXT, GLOBAL1, what="vm1: its static address beats SNAT")
        assert_ping(w, "vm2", EXT, "vm2 -> ext through SNAT")
        assert_ping(w, "vm3", EXT, "vm3 -> ext through SNAT")
    assert lines_with(seen.lines, f"{RPUB} > {EXT}: ICMP echo request"), seen.lines
    assert not [line for line in seen.lines if " 10.1.0." in line or " 10.2.0." in line], \
        f"a private address on the segment: {seen.lines}"
    assert_seen_as(w, "vm2", FAR, RPUB, what="vm2 -> far through SNAT")



def unsolicited_to_vm2(w: World, what: str) -> list[str]:
    """ext (with a route to 10/8 through the port) tries vm2's private address: TCP,
    ping, and TCP to the port's own address. What got through, with the captures."""
    before = list(w.who["vm2"].peers())
    with capture(w.vm("vm2").netns, "eth0", f"ip src {EXT}") as inbound, \
            capture(w.ext.netns, "eth0", "ip") as on_ext:
        r = who(w, "ext", ip("vm2"), timeout=1.0)
        ping = w.ext.ping(ip("vm2"), count=2, wait=0.5)
        to_router = who(w, "ext", RPUB, timeout=1.0)
    leaks = []
    if r or ping.received or to_router:
        leaks.append(f"answered: tcp {r.output!r}, ping {ping.received}/{ping.transmitted}, "
                     f"tcp to the port {to_router.output!r}")
    if inbound.lines or w.who["vm2"].peers() != before:
        leaks.append("reached vm2:\n  " + "\n  ".join(inbound.lines))
    if leaks:
        leaks.append("on ext's eth0:\n  " + "\n  ".join(on_ext.lines))
        leaks.insert(0, f"{what} ({w.transport})")
    return leaks


def test_snat_leaves_untranslated_connections_whole(p2v: World, changes: Changes) -> None:
    """A snat port is still a router: a host with a route to 10/8 through it reaches a
    private address (as through any router; hiding it is enable_route_translation's or
    the security groups' job, next test), and that connection stays untranslated both
    ways - its replies are not SNAT'd mid-stream - while the VM's own connections out are
    translated."""
    w = p2v
    changes.route("ext", "10.0.0.0/8", RPUB)
    assert_seen_as(w, "ext", ip("vm2"), EXT, what="control: no NAT, ext routes to vm2",
                   converge=True)
    changes.snat()
    assert_seen_as(w, "vm2", EXT, RPUB, what="vm2 -> ext through SNAT", converge=True)
    with capture(w.ext.netns, "eth0", "ip") as seen:
        assert_seen_as(w, "ext", ip("vm2"), EXT, what="ext -> vm2 (routed, untranslated)")
        assert_ping(w, "ext", ip("vm2"), "ext -> vm2 ping, untranslated")
    # tcpdump -e: "<macs>, ethertype IPv4 (0x0800), length N: <src>[.port] > <dst>...";
    # in this window vm2 only answers ext
    source = {line: m.group(1) for line in seen.lines
              if (m := re.search(r"length \d+: (\d+\.\d+\.\d+\.\d+)", line))}
    replies = [line for line, src in source.items() if src == ip("vm2")]
    translated = [line for line, src in source.items() if src == RPUB]
    assert replies and not translated, \
        "the replies of ext's connections to vm2 must come from its own address, never " \
        "from the SNAT address:\n  " + "\n  ".join(seen.lines) + "\n" + evidence(w)
    assert_seen_as(w, "vm2", EXT, RPUB, what="vm2 -> ext still through SNAT")


def test_route_translation_drops_the_untranslated(p2v: World, changes: Changes) -> None:
    """wanedge's `enable_route_translation: true`: only translated traffic crosses the
    port - vm1 (static) both ways, vm2 not at all until SNAT, nothing unsolicited to a
    private address."""
    w = p2v
    changes.flag("if-rpub", enable_route_translation=True)
    changes.static("tr-1", static_entry(GLOBAL1, ip("vm1")))
    changes.route("ext", "10.0.0.0/8", RPUB)
    assert_seen_as(w, "ext", GLOBAL1, EXT, what="ext -> vm1's global address",
                   converge=True)
    assert_seen_as(w, "vm1", EXT, GLOBAL1, what="vm1 -> ext as 172.16.0.50")
    wait_for(w, lambda: not who(w, "vm2", EXT, timeout=0.5),
             "vm2 (no translation) -> ext dropped")
    with capture(w.ext.netns, "eth0", f"ip src {ip('vm2')}") as seen:
        r = who(w, "vm2", EXT, timeout=1.0)
    assert not r and seen.lines == [], \
        f"untranslated vm2 crossed the port: {r.output!r} {seen.lines}\n" + evidence(w)
    leaks = unsolicited_to_vm2(w, "enable_route_translation: ext reached vm2")
    assert not leaks, "\n".join(leaks) + "\n" + evidence(w)
    changes.snat()
    assert_seen_as(w, "vm2", EXT, RPUB, what="vm2 -> ext through SNAT", converge=True)
    leaks = unsolicited_to_vm2(w, "enable_route_translation and SNAT: ext reached vm2")
    assert not leaks, "\n".join(leaks) + "\n" + evidence(w)


# ------------------------------------------------------------------ (5) port forward

def test_port_forward(p2v: World, changes: Changes) -> None:
    """172.16.0.51:8080 -> vm3 (h2):80, and only that port."""
    w = p2v
    changes.static("tr-1", static_entry(GLOBAL2, ip("vm3"), 8080, WHO))
    assert_seen_as(w, "ext", GLOBAL2, EXT, port=8080, what="ext -> 172.16.0.51:8080",
                   converge=True)
    assert w.who["vm3"].peers()[-1] == EXT
    assert_seen_as(w, "far", GLOBAL2, FAR, port=8080, what="far -> 172.16.0.51:8080")
    before = list(w.who["vm3"].peers())
    r = who(w, "ext", GLOBAL2, port=WHO, timeout=1.0)
    assert not r and w.who["vm3"].peers() == before, \
        f"172.16.0.51:80 is not forwarded (vm3 listens on 80): {r.output!r}\n" + evidence(w)


# ------------------------------------------------------------------ (6) vna restart

def test_vna_restart_keeps_translated_connections(p2v: World, changes: Changes) -> None:
    """h1's vna crashes (SIGKILL) and starts again: established connections through
    static NAT (both ways) and SNAT go on, new ones work after."""
    w = p2v
    c = w.cloud
    h1 = c.hosts["h1"]
    changes.snat()
    changes.static("tr-1", static_entry(GLOBAL1, ip("vm1")))
    assert_seen_as(w, "vm2", EXT, RPUB, what="SNAT before the restart", converge=True)
    assert_seen_as(w, "ext", GLOBAL1, EXT, what="static NAT before the restart",
                   converge=True)
    streams = c.lab.dir / "streams"
    with TcpStream(w.ext.netns, w.vm("vm1").netns, GLOBAL1, 7001, streams / "in.txt") as s_in, \
            TcpStream(w.vm("vm2").netns, w.ext.netns, EXT, 7002, streams / "snat.txt") as s_snat, \
            TcpStream(w.vm("vm1").netns, w.ext.netns, EXT, 7003, streams / "out.txt") as s_out:
        for s in (s_in, s_snat, s_out):
            assert s.send_and_check("a1"), f"{s.out.name}: before the restart"
        assert h1.vna is not None
        h1.vna.kill9()
        for s in (s_in, s_snat, s_out):
            assert s.send_and_check("a2"), \
                f"{s.out.name}: vna killed, connection cut\n" + evidence(w)
        c.start_vna(h1)
        agents_caught_up(c)
        time.sleep(0.5)
        for s in (s_in, s_snat, s_out):
            assert s.send_and_check("a3"), \
                f"{s.out.name}: connection cut by the vna restart ({w.transport})\n" \
                + evidence(w)
    assert_seen_as(w, "vm2", EXT, RPUB, what="new SNAT connection after the restart")
    assert_seen_as(w, "vm3", EXT, RPUB, what="new SNAT connection (h2, nw-b) after it")
    assert_seen_as(w, "ext", GLOBAL1, EXT, what="new static NAT connection after it")
    assert_seen_as(w, "vm1", EXT, GLOBAL1, what="vm1 leaves as 172.16.0.50 after it")


# ------------------------------------------------------------------ (7) bad input

def test_bad_translations_are_refused_and_change_nothing(p2v: World, changes: Changes) -> None:
    w = p2v
    changes.static("tr-1", static_entry(GLOBAL1, ip("vm1")))
    assert_seen_as(w, "ext", GLOBAL1, EXT, what="tr-1", converge=True)
    before = w.api.get("translations")
    seq = w.api.get("health")["seq"]
    bad = [
        ("translations/tr-1/static_address", static_entry("192.0.2.99", ip("vm1")),
         "ingress_ipv4_address", "outside the physical network"),
        ("translations/tr-1/static_address", static_entry(ip("vmp"), ip("vm2")),
         "ingress_ipv4_address", "leased by another interface (vmp)"),
        ("translations", {"uuid": "tr-bad", "interface_uuid": "if-1p1",
                          "mode": "static_address"},
         "interface_uuid", "a router port on a virtual network"),
        ("translations", {"uuid": "tr-bad", "interface_uuid": "if-vm1", "mode": "snat"},
         "interface_uuid", "a vif"),
        ("translations", {"uuid": "tr-bad", "interface_uuid": "if-h1phys", "mode": "snat"},
         "interface_uuid", "a host interface"),
    ]
    wrong = []
    for path, fields, field_name, why in bad:
        try:
            row = w.api.post(path, **fields)
        except HttpError as exc:
            body = exc.body if isinstance(exc.body, dict) else {}
            if not (400 <= exc.status < 500 and body.get("field") == field_name):
                wrong.append(f"{why}: {exc.status} {exc.body} (expected 4xx naming "
                             f"{field_name})")
            continue
        if path == "translations":
            changes.translations.append(fields["uuid"])
        wrong.append(f"{why}: accepted: {row}")
    assert not wrong, "\n".join(wrong)
    assert w.api.get("translations") == before
    assert w.api.get("health")["seq"] == seq, "a refused write published an event"
    # vmp keeps its address on the segment; tr-1 still works
    w.ext.flush_neighbors()
    assert_ping(w, "ext", ip("vmp"), "vmp after the refused writes")
    assert w.vm("vmp").mac in w.ext.neighbor(ip("vmp")), w.ext.neighbor(ip("vmp"))
    assert_seen_as(w, "ext", GLOBAL1, EXT, what="tr-1 after the refused writes")
