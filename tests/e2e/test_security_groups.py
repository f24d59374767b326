"""Security groups and static filters (issue 11, OpenVNet's semantics) on real Open
vSwitch, with TCP (nc), UDP and ICMP between VM namespaces, driven over HTTP.

One cloud per transport: two hosts, nw-a and nw-b joined by the distributed router, and
VMs placed so that every check runs same host, other host and routed:

    h1: web1 10.1.0.11 (the protected VM)  cli1 10.1.0.12  cli4 10.2.0.15
    h2: cli2 10.1.0.13                      cli3 10.2.0.14

Every VM listens on TCP 80, 81 and 8005 (nc -lk) and answers UDP 53 (an echo server), so
a refused connection would mean the SYN got through: "denied" is always a *timeout*.
Each denied probe has its positive control in the same test: the same pair and port
passes while the VM is not filtered (or once the rule exists). Each test undoes its
model changes (even when it fails) and waits for the unfiltered state to come back.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest

from lab import Lab
from lab.cloud import Cloud
from lab.traffic import TcpListener, TcpStream, UdpEcho, tcp_connect, udp_request
from tests.e2e.vna_probe import agents_caught_up
from vnctl.api import Api, HttpError

TRANSPORTS = ["tunnel", "mac2mac"]
VMS = {  # name: (host, network, address)
    "web1": ("h1", "nw-a", "10.1.0.11"),
    "cli1": ("h1", "nw-a", "10.1.0.12"),  # same host, same network
    "cli2": ("h2", "nw-a", "10.1.0.13"),  # other host, same network
    "cli3": ("h2", "nw-b", "10.2.0.14"),  # other host, routed
    "cli4": ("h1", "nw-b", "10.2.0.15"),  # same host, routed
}
TCP_PORTS = (80, 81, 8005)
UDP_PORT = 53
DHCP_SERVER = "10.1.0.2"
CONVERGE = 3.0  # the spec says 1 s; polled up to this for robustness, elapsed printed
DENY_WAIT = 1.0  # how long a denied probe waits for an answer


def ip(vm: str) -> str:
    return VMS[vm][2]


# ------------------------------------------------------------------ probes

@dataclass(frozen=True)
class Probe:
    proto: str  # tcp | udp | icmp
    src: str
    dst: str
    port: int | None = None

    def __str__(self) -> str:
        return f"{self.proto} {self.src}->{self.dst}" + (f":{self.port}" if self.port else "")


def tcp(src: str, dst: str, port: int) -> Probe:
    return Probe("tcp", src, dst, port)


def udp(src: str, dst: str) -> Probe:
    return Probe("udp", src, dst, UDP_PORT)


def icmp(src: str, dst: str) -> Probe:
    return Probe("icmp", src, dst)


@dataclass
class World:
    cloud: Cloud
    echo: dict[str, UdpEcho] = field(default_factory=dict)
    tokens: Iterator[int] = field(default_factory=itertools.count)

    @property
    def api(self) -> Api:
        assert self.cloud.api is not None
        return self.cloud.api


PASS, DROP, HALF = "pass", "drop", "half"


def run_probe(w: World, p: Probe, timeout: float = DENY_WAIT) -> tuple[str, str]:
    """(outcome, detail): PASS, the whole exchange (TCP connection opened, UDP echo or
    ICMP echo reply back); DROP, nothing came back and a UDP request did not arrive; HALF,
    the request got in but no proper answer came back (a TCP reset, a UDP request logged
    by the server without its echo coming back) - neither allowed nor dropped."""
    vm = w.cloud.vms[p.src]
    if p.proto == "tcp":
        assert p.port is not None
        r = tcp_connect(vm.netns, ip(p.dst), p.port, timeout=timeout)
        return (PASS if r.ok else HALF if r.refused else DROP), r.output
    if p.proto == "udp":
        token = f"{p.src}-{p.dst}-{next(w.tokens)}"
        r = udp_request(vm.netns, ip(p.dst), UDP_PORT, token, timeout=timeout)
        arrived = w.echo[p.dst].received(token)
        outcome = PASS if r.replied else HALF if arrived else DROP
        return outcome, f"{r.output} (request arrived: {arrived})"
    r = vm.ping(ip(p.dst), count=1, wait=timeout)
    return (PASS if r.ok else DROP), r.output.strip().splitlines()[-1] if r.output.strip() else ""


def _want(expected: bool) -> str:
    return PASS if expected else DROP


def assert_dhcp_answered(w: World, vm: str) -> None:
    """A DHCP exchange (busybox udhcpc, configuring nothing) gets the VM's own lease."""
    r = w.cloud.vms[vm].run("busybox", "udhcpc", "-n", "-q", "-t", "3", "-T", "1", "-i",
                            "eth0", "-s", "/bin/true", check=False)
    out = r.stdout + r.stderr
    assert r.returncode == 0 and f"lease of {ip(vm)} obtained" in out, \
        f"{vm}: no DHCP lease ({w.cloud.transport}): {out}\n" + evidence(w)


def evidence(w: World) -> str:
    """The conntrack/ACL flows (with counters) and the conntrack table of each host."""
    out = []
    for name, host in w.cloud.hosts.items():
        flows = [f for f in host.hv.dump_flows(keep_counters=True)
                 if re.search(r"ct_state|ct\(|conj|ct_mark|ct_label|table=7\d", f)]
        ct = host.hv.ovs.appctl("dpctl/dump-conntrack", check=False).splitlines()
        out.append(f"--- {name}: {len(flows)} ct/acl flows\n" + "\n".join(flows[:80]))
        out.append(f"--- {name}: conntrack ({len(ct)})\n" + "\n".join(ct[:40]))
    return "\n".join(out)


def check(w: World, expected: dict[Probe, bool], what: str = "") -> None:
    """Run every probe (in parallel) and assert each passes or is dropped as expected."""
    probes = list(expected)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda p: run_probe(w, p), probes))
    wrong = [f"  {p}: expected {_want(expected[p])}, got {outcome} [{detail}]"
             for p, (outcome, detail) in zip(probes, results, strict=True)
             if outcome != _want(expected[p])]
    if wrong:
        proof = evidence(w)
        # Transient or lasting? (only said in the message: the test fails either way)
        time.sleep(2)
        again = [f"  {p} 2 s later: {run_probe(w, p)[0]}"
                 for p, (outcome, _) in zip(probes, results, strict=True)
                 if outcome != _want(expected[p])]
        raise AssertionError(f"{what} ({w.cloud.transport}):\n" + "\n".join(wrong + again)
                             + "\n" + proof)


def converge(w: World, p: Probe, expected: bool, what: str = "", quiet: bool = False) -> float:
    """Seconds until `p` has the expected outcome (short probes, up to CONVERGE s)."""
    started = time.monotonic()
    while True:
        outcome, detail = run_probe(w, p, timeout=0.3)
        elapsed = time.monotonic() - started
        if outcome == _want(expected):
            if not quiet:
                print(f"[{w.cloud.transport}] {what or p}: {outcome} after {elapsed:.2f}s")
            return elapsed
        if elapsed > CONVERGE:
            raise AssertionError(
                f"{what} ({w.cloud.transport}): {p} still {outcome} after {elapsed:.1f}s "
                f"[{detail}]\n" + evidence(w))


def all_pass(*probes: Probe) -> dict[Probe, bool]:
    return dict.fromkeys(probes, True)


# ------------------------------------------------------------------ the model, undone

class Model:
    """The test's API writes, recorded so that teardown can undo them."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.groups: list[str] = []
        self.members: set[tuple[str, str]] = set()
        self.filters: list[str] = []
        self.flags: dict[str, set[str]] = {}

    def group(self, uuid: str, rules: str = "") -> dict:
        row = self.api.post("security_groups", uuid=uuid, display_name=uuid,
                            rules=rules or None)
        self.groups.append(uuid)
        return row

    def rules(self, uuid: str, rules: str) -> dict:
        return self.api.put(f"security_groups/{uuid}", rules=rules)

    def join(self, sg: str, vm: str, openvnet_path: bool = True) -> None:
        """OpenVNet's path is /security_groups/:sg/interfaces/:if; the other one
        /interfaces/:if/security_groups/:sg."""
        self.api.post(_membership(sg, vm, openvnet_path))
        self.members.add((sg, vm))

    def leave(self, sg: str, vm: str, openvnet_path: bool = True) -> None:
        self.api.delete(_membership(sg, vm, openvnet_path))
        self.members.discard((sg, vm))

    def interface(self, vm: str, **flags: bool) -> dict:
        row = self.api.put(f"interfaces/if-{vm}", **flags)
        self.flags.setdefault(vm, set()).update(k for k, v in flags.items() if v)
        return row

    def filter(self, uuid: str, vm: str, **passthrough: bool) -> dict:
        row = self.api.post("filters", uuid=uuid, interface_uuid=f"if-{vm}", mode="static",
                            **passthrough)
        self.filters.append(uuid)
        return row

    def static(self, fil: str, protocol: str, ipv4_address: str, port_number: int | None = None,
               passthrough: bool = True) -> dict:
        return self.api.post(f"filters/{fil}/static", protocol=protocol,
                             ipv4_address=ipv4_address, port_number=port_number,
                             passthrough=passthrough)

    def undo(self) -> None:
        """Filters, flags, rules (they may name other groups), members, groups."""
        for fil in reversed(self.filters):
            _delete_quietly(self.api, f"filters/{fil}")
        for vm, flags in self.flags.items():
            for flag in flags:
                self.api.put(f"interfaces/if-{vm}", **{flag: False})
        for sg in self.groups:
            _ignore_missing(lambda sg=sg: self.api.put(f"security_groups/{sg}", rules=""))
        for sg, vm in sorted(self.members):
            _delete_quietly(self.api, _membership(sg, vm, False))
        for sg in reversed(self.groups):
            _delete_quietly(self.api, f"security_groups/{sg}")


def _membership(sg: str, vm: str, openvnet_path: bool) -> str:
    if openvnet_path:
        return f"security_groups/{sg}/interfaces/if-{vm}"
    return f"interfaces/if-{vm}/security_groups/{sg}"


def _ignore_missing(write) -> None:
    try:
        write()
    except HttpError as exc:
        if exc.status != 404:
            raise


def _delete_quietly(api: Api, path: str) -> None:
    _ignore_missing(lambda: api.delete(path))


# ------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module", params=TRANSPORTS)
def world(request: pytest.FixtureRequest, e2e_environment: None) -> Iterator[World]:
    with Lab().logs_kept_on_failure(f"sg-{request.param}") as lab:
        c = Cloud(lab, transport=request.param).start()
        c.add_two_routed_networks()
        for name, (host, network, address) in VMS.items():
            c.add_vm(host, name, network, address)
        # nw-a's DHCP service: a filtered VM must still get its lease
        c.api.post("interfaces", uuid="if-dhcpa", mode="simulated", network_uuid="nw-a",
                   mac_address="02:00:30:00:00:02", ipv4_address=DHCP_SERVER)
        c.api.post("network_services", uuid="ns-dhcpa", interface_uuid="if-dhcpa", type="dhcp")
        w = World(c)
        for name, vm in c.vms.items():
            for port in TCP_PORTS:
                lab.on_close(TcpListener(vm.netns, port).stop)
            w.echo[name] = UdpEcho(vm.netns, UDP_PORT, lab.dir / "udp" / f"{name}.log")
            lab.on_close(w.echo[name].stop)
        c.wait_ping("cli3", ip("web1"), timeout=15)
        c.wait_ping("cli2", ip("cli4"), timeout=15)
        yield w


@pytest.fixture
def model(world: World) -> Iterator[Model]:
    m = Model(world.api)
    try:
        yield m
    finally:
        m.undo()
        # Back to unfiltered: every VM accepts a new connection again.
        for dst, src in (("web1", "cli2"), ("cli1", "cli3"), ("cli2", "cli4"),
                         ("cli3", "cli1"), ("cli4", "cli2")):
            converge(world, tcp(src, dst, 81), True, f"teardown: {dst} unfiltered", quiet=True)
    assert world.api.get("security_groups")["total_count"] == 0


def tcp_stream(w: World, src: str, dst: str, port: int) -> TcpStream:
    c = w.cloud
    return TcpStream(c.vms[src].netns, c.vms[dst].netns, ip(dst), port,
                     c.lab.dir / "streams" / f"{src}-{dst}-{port}.txt")




# ------------------------------------------------------------------ no filtering

def test_no_group_no_flag_accepts_everything(world: World, model: Model) -> None:
    """The positive control of everything below: unfiltered, every probe passes."""
    clients = ("cli1", "cli2", "cli3", "cli4")
    check(world, all_pass(
        *(tcp(c, "web1", port) for c in clients for port in TCP_PORTS),
        *(udp(c, "web1") for c in clients), *(icmp(c, "web1") for c in clients),
        *(tcp("web1", c, 81) for c in clients), *(udp("web1", c) for c in clients),
        *(icmp("web1", c) for c in clients),
    ), "unfiltered")
    assert_dhcp_answered(world, "web1")


# ------------------------------------------------------------------ rules

RULES_WEB = """\
# web1's group: protocol:port:source, one per line or comma separated
tcp:80:10.1.0.12/31        # cli1 (same host) and cli2 (other host)
tcp:8000-8010:10.2.0.0/24, udp:53:10.1.0.0/24
icmp:-1:10.2.0.14          # cli3 (routed, other host) only
"""


def test_rules_admit_by_protocol_port_and_source(world: World, model: Model) -> None:
    expected = {
        tcp("cli1", "web1", 80): True,    # same host, address in the /31
        tcp("cli2", "web1", 80): True,    # other host
        tcp("cli1", "web1", 81): False,   # port not in any rule
        tcp("cli2", "web1", 81): False,
        tcp("cli3", "web1", 80): False,   # source not allowed on 80
        tcp("cli3", "web1", 8005): True,  # routed, other host, port range, CIDR
        tcp("cli4", "web1", 8005): True,  # routed, same host
        tcp("cli1", "web1", 8005): False,  # not from 10.2.0.0/24
        udp("cli1", "web1"): True,
        udp("cli2", "web1"): True,
        udp("cli3", "web1"): False,       # UDP only from 10.1.0.0/24
        udp("cli4", "web1"): False,
        icmp("cli3", "web1"): True,
        icmp("cli4", "web1"): False,
        icmp("cli1", "web1"): False,
        # outbound stays allowed (replies pass), and non-members are not filtered
        tcp("web1", "cli2", 81): True,
        icmp("web1", "cli3"): True,
        tcp("cli1", "cli2", 81): True,
        tcp("cli3", "cli4", 81): True,
    }
    check(world, all_pass(*expected), "control: before web1 joins a group")
    model.group("sg-web", RULES_WEB)
    check(world, all_pass(*expected), "a group without members filters nobody")
    model.join("sg-web", "web1")
    converge(world, tcp("cli1", "web1", 81), False, "joining sg-web turns filtering on")
    for vm in ("web1", "cli1", "cli3"):  # ARP still answered for a filtered VM's traffic
        world.cloud.vms[vm].flush_neighbors()
    check(world, expected, "web1 in sg-web")
    assert_dhcp_answered(world, "web1")


def test_adding_a_rule_opens_removing_it_cuts_the_open_connection(
        world: World, model: Model) -> None:
    model.group("sg-web", "tcp:7001:10.1.0.13\ntcp:7002:10.2.0.15")
    check(world, all_pass(tcp("cli2", "web1", 81)), "control")
    model.join("sg-web", "web1", openvnet_path=False)
    converge(world, tcp("cli2", "web1", 81), False, "sg-web without a rule for 81")
    with tcp_stream(world, "cli2", "web1", 7001) as a, \
            tcp_stream(world, "cli4", "web1", 7002) as b:
        assert a.send_and_check("a1") and b.send_and_check("b1"), "allowed streams"
        model.rules("sg-web", "tcp:7002:10.2.0.15\ntcp:81:10.1.0.13")
        converge(world, tcp("cli2", "web1", 81), True, "added rule opens new connections")
        time.sleep(0.5)
        assert b.send_and_check("b2"), "the connection of a kept rule goes on"
        assert not a.send_and_check("a2", timeout=2.0), \
            "the open connection of a removed rule must be cut\n" + evidence(world)
        model.rules("sg-web", "")
        converge(world, tcp("cli2", "web1", 81), False, "the last rule removed")
        time.sleep(0.5)
        assert not b.send_and_check("b3", timeout=2.0), \
            "removing the last rule cuts its connection too\n" + evidence(world)
        assert not a.delivered("a2")


# ------------------------------------------------------------------ statefulness

def test_replies_pass_unsolicited_inbound_is_dropped(world: World, model: Model) -> None:
    outbound = all_pass(
        tcp("web1", "cli1", 81), tcp("web1", "cli2", 81), tcp("web1", "cli3", 81),
        udp("web1", "cli2"), udp("web1", "cli3"), icmp("web1", "cli2"), icmp("web1", "cli3"))
    inbound = {tcp("cli1", "web1", 81): False, tcp("cli2", "web1", 81): False,
               tcp("cli3", "web1", 81): False, udp("cli2", "web1"): False,
               udp("cli3", "web1"): False, icmp("cli2", "web1"): False}
    check(world, {**outbound, **all_pass(*inbound)}, "control: web1 unfiltered")
    model.group("sg-web", "tcp:80:10.1.0.12")
    model.join("sg-web", "web1")
    converge(world, tcp("cli2", "web1", 81), False, "web1 filtered")
    check(world, {**outbound, **inbound}, "web1 in sg-web: its own connections only")
    with tcp_stream(world, "web1", "cli2", 7003) as s:
        assert s.send_and_check("o1") and s.send_and_check("o2"), "web1's own long connection"


def test_ingress_filtering_enabled_without_a_group(world: World, model: Model) -> None:
    inbound = {tcp("cli1", "web1", 81): False, tcp("cli2", "web1", 80): False,
               tcp("cli3", "web1", 8005): False, icmp("cli2", "web1"): False,
               udp("cli4", "web1"): False}
    outbound = all_pass(tcp("web1", "cli2", 81), udp("web1", "cli3"), icmp("web1", "cli1"))
    check(world, {**outbound, **all_pass(*inbound)}, "control")
    row = model.interface("web1", ingress_filtering_enabled=True)
    assert row["ingress_filtering_enabled"] is True
    converge(world, tcp("cli1", "web1", 81), False, "ingress_filtering_enabled=true")
    check(world, {**outbound, **inbound}, "no group and ingress filtering: no new inbound")
    model.interface("web1", ingress_filtering_enabled=False)
    converge(world, tcp("cli1", "web1", 81), True, "ingress_filtering_enabled=false")


# ------------------------------------------------------------------ isolation, remote groups

def test_isolation_members_accept_each_other_on_any_port(world: World, model: Model) -> None:
    model.group("sg-iso")  # no rules at all
    expected = {
        tcp("cli1", "web1", 81): True,    # members, same host
        tcp("cli3", "web1", 81): True,    # members, routed, other host
        tcp("web1", "cli3", 8005): True,
        tcp("cli3", "cli1", 80): True,
        udp("cli3", "web1"): True,
        icmp("cli1", "web1"): True,
        tcp("cli2", "web1", 81): False,   # non-members
        tcp("cli4", "web1", 81): False,
        tcp("cli2", "cli3", 81): False,
        udp("cli2", "web1"): False,
        icmp("cli4", "cli1"): False,
        tcp("cli2", "cli4", 81): True,    # between non-members: unfiltered
    }
    check(world, all_pass(*expected), "control")
    for vm in ("web1", "cli1", "cli3"):
        model.join("sg-iso", vm, openvnet_path=vm != "cli1")
    converge(world, tcp("cli2", "web1", 81), False, "sg-iso members filtered")
    check(world, expected, "sg-iso: web1, cli1, cli3")
    with tcp_stream(world, "cli1", "web1", 7006) as s, \
            tcp_stream(world, "cli3", "web1", 7007) as kept:
        assert s.send_and_check("i1") and kept.send_and_check("k1"), "members' connections"
        model.leave("sg-iso", "cli1", openvnet_path=False)
        converge(world, tcp("cli1", "web1", 81), False, "cli1 left sg-iso")
        time.sleep(0.5)
        assert kept.send_and_check("k2"), "a remaining member's connection goes on"
        assert not s.send_and_check("i2", timeout=2.0), \
            "cli1 left the group: its open connection must be cut\n" + evidence(world)
    check(world, {tcp("cli2", "cli1", 81): True, tcp("cli3", "web1", 81): True},
          "cli1 unfiltered again, the others still members")


def test_remote_group_rule_follows_membership(world: World, model: Model) -> None:
    """sg-web admits tcp 80 and 7004 from sg-app's members; web1 (h1) and cli3 (h2) are
    in sg-web, so the rule is enforced on both hosts."""
    model.group("sg-app")
    model.group("sg-web", "tcp:80:sg-app\ntcp:7004:sg-app")
    check(world, all_pass(tcp("cli2", "web1", 80), tcp("cli2", "cli3", 80),
                          tcp("cli4", "web1", 80), tcp("cli4", "cli3", 80)), "control")
    model.join("sg-web", "web1")
    model.join("sg-web", "cli3")
    converge(world, tcp("cli2", "web1", 80), False, "sg-app has no members")
    check(world, {tcp("cli2", "cli3", 80): False, tcp("cli4", "web1", 80): False},
          "sg-app empty")

    t_join = converge_after(world, lambda: model.join("sg-app", "cli2"),
                            tcp("cli2", "web1", 80), True, "cli2 joins sg-app")
    check(world, {tcp("cli2", "web1", 80): True, tcp("cli2", "cli3", 80): True,
                  tcp("cli4", "web1", 80): False, tcp("cli4", "cli3", 80): False},
          "cli2 in sg-app")
    with tcp_stream(world, "cli2", "web1", 7004) as s:
        assert s.send_and_check("r1"), "cli2's connection as an sg-app member"
        model.join("sg-app", "cli4")
        converge(world, tcp("cli4", "cli3", 80), True, "cli4 joins sg-app")
        t_leave = converge_after(world, lambda: model.leave("sg-app", "cli2"),
                                 tcp("cli2", "web1", 80), False, "cli2 leaves sg-app")
        time.sleep(0.5)
        assert not s.send_and_check("r2", timeout=2.0), \
            "cli2 left sg-app: its open connection must be cut\n" + evidence(world)
    check(world, {tcp("cli2", "cli3", 80): False, tcp("cli4", "web1", 80): True,
                  tcp("cli4", "cli3", 80): True}, "cli4 in sg-app, cli2 not")
    print(f"[{world.cloud.transport}] membership followed: join {t_join:.2f}s, "
          f"leave {t_leave:.2f}s")


def converge_after(w: World, write, p: Probe, expected: bool, what: str) -> float:
    write()
    return converge(w, p, expected, what)


# ------------------------------------------------------------------ validation

def test_bad_rule_is_refused_and_changes_nothing(world: World, model: Model) -> None:
    model.group("sg-web", "tcp:80:10.1.0.12")
    check(world, all_pass(tcp("cli1", "web1", 80), tcp("cli2", "web1", 80)), "control")
    model.join("sg-web", "web1")
    converge(world, tcp("cli2", "web1", 80), False, "only cli1 allowed")
    before = world.api.get("security_groups/sg-web")
    seq = world.api.get("health")["seq"]
    bad = [
        # a valid rule for cli2 next to the bad one: nothing may be applied
        ("tcp:80:10.1.0.12\ntcp:80:10.1.0.13\ntcp:99999:10.1.0.13", 3, "99999"),
        ("tcp:80:10.1.0.13\n# a comment\nudp:53:sg-nosuch", 3, "sg-nosuch"),
        ("tcp:80:10.1.0.13, gre:80:10.1.0.13", 1, "gre"),
        ("tcp:80:10.1.0.13\nicmp:-1:10.1.0.300", 2, "10.1.0.300"),
    ]
    for rules, line, text in bad:
        with pytest.raises(HttpError) as err:
            world.api.put("security_groups/sg-web", rules=rules)
        body = err.value.body
        assert err.value.status == 422 and body["field"] == "rules", body
        assert text in body["message"] and str(line) in body["message"], body
    with pytest.raises(HttpError) as err:
        world.api.post("security_groups", uuid="sg-bad", rules="tcp:80:10.1.0.13\nudp:0:x")
    assert err.value.status == 422 and err.value.body["field"] == "rules", err.value.body
    with pytest.raises(HttpError) as err:
        world.api.get("security_groups/sg-bad")
    assert err.value.status == 404
    assert world.api.get("security_groups/sg-web") == before
    assert world.api.get("health")["seq"] == seq, "a refused write published an event"
    check(world, {tcp("cli1", "web1", 80): True, tcp("cli2", "web1", 80): False},
          "traffic as before the refused writes")


# ------------------------------------------------------------------ static filters

def test_static_filters(world: World, model: Model) -> None:
    """OpenVNet's filter.yml: enable_filtering + a static filter. Default drop both ways;
    a passthrough entry lets through, ingress, from its address to its port and, egress,
    to its address and port (replies pass: stateful); passthrough defaults flip that,
    and passthrough=false entries then drop."""
    model.filter("fil-web1", "web1")
    model.static("fil-web1", "tcp", "10.1.0.13/32", 80)
    expected = {
        tcp("cli2", "web1", 80): True,    # from 10.1.0.13 to port 80
        tcp("web1", "cli2", 80): True,    # to 10.1.0.13 port 80
        tcp("cli1", "web1", 80): False,   # another address
        tcp("cli2", "web1", 81): False,   # another port
        icmp("cli2", "web1"): False,
        udp("cli3", "web1"): False,
        tcp("web1", "cli2", 81): False,   # egress: default drop
        tcp("web1", "cli1", 80): False,
        icmp("web1", "cli3"): False,
        udp("web1", "cli1"): False,
    }
    check(world, all_pass(*expected), "control: a filter without enable_filtering")
    row = model.interface("web1", enable_filtering=True)
    assert row["enable_filtering"] is True
    converge(world, tcp("cli1", "web1", 80), False, "enable_filtering=true")
    for vm in ("web1", "cli2"):  # ARP is answered whatever the filter says
        world.cloud.vms[vm].flush_neighbors()
    check(world, expected, "static: tcp 80 with 10.1.0.13 only")
    assert_dhcp_answered(world, "web1")

    # a CIDR and port_number 0 (any port), routed peers, both ways
    model.static("fil-web1", "tcp", "10.2.0.0/24", 0)
    converge(world, tcp("cli3", "web1", 81), True, "static tcp 10.2.0.0/24 any port")
    check(world, {
        tcp("cli3", "web1", 81): True, tcp("cli4", "web1", 8005): True,
        tcp("web1", "cli3", 80): True, tcp("web1", "cli4", 81): True,
        tcp("cli1", "web1", 81): False, udp("cli3", "web1"): False,
        icmp("web1", "cli3"): False,
    }, "static: and tcp with 10.2.0.0/24")

    # default allow both ways, passthrough=false entries drop
    _delete_quietly(world.api, "filters/fil-web1")
    model.filter("fil-web1b", "web1", ingress_passthrough=True, egress_passthrough=True)
    model.static("fil-web1b", "icmp", "10.1.0.13/32", passthrough=False)
    model.static("fil-web1b", "tcp", "10.2.0.0/24", 81, passthrough=False)
    converge(world, tcp("cli1", "web1", 81), True, "ingress_passthrough=true")
    check(world, {
        tcp("cli1", "web1", 81): True, tcp("cli3", "web1", 80): True,
        icmp("cli1", "web1"): True, udp("cli2", "web1"): True, tcp("web1", "cli2", 81): True,
        tcp("web1", "cli3", 80): True,
        icmp("cli2", "web1"): False,      # passthrough=false entries drop
        icmp("web1", "cli2"): False,
        tcp("cli3", "web1", 81): False,
        tcp("cli4", "web1", 81): False,
        tcp("web1", "cli3", 81): False,
    }, "default allow with dropping statics")


# ------------------------------------------------------------------ vna restart

def test_vna_restart_keeps_enforcement(world: World, model: Model) -> None:
    """Crashed (SIGKILL) and started again, the vna leaves the flows and OVS's conntrack
    alone: an allowed connection goes on, a cut one stays cut, new ones stay denied."""
    c = world.cloud
    h1 = c.hosts["h1"]
    model.group("sg-web", "tcp:7005:10.1.0.13\ntcp:7008:10.1.0.12")
    check(world, all_pass(tcp("cli1", "web1", 81), tcp("cli2", "web1", 81)), "control")
    model.join("sg-web", "web1")
    converge(world, tcp("cli1", "web1", 81), False, "web1 filtered")
    with tcp_stream(world, "cli2", "web1", 7005) as s, \
            tcp_stream(world, "cli1", "web1", 7008) as cut:
        assert s.send_and_check("v1") and cut.send_and_check("c1")
        model.rules("sg-web", "tcp:7005:10.1.0.13")
        converge(world, tcp("cli1", "web1", 7008), False, "rule for 7008 removed")
        assert not cut.send_and_check("c2", timeout=1.5), "cut before the restart"
        flows = c.flows("h1")
        assert h1.vna is not None
        h1.vna.kill9()
        assert s.send_and_check("v2"), "vna killed: the allowed connection goes on"
        check(world, {tcp("cli1", "web1", 81): False}, "vna killed: still denied")
        c.start_vna(h1)
        agents_caught_up(c)
        time.sleep(0.5)
        assert c.flows("h1") == flows, "the restarted vna computes the same flows"
        assert s.send_and_check("v3"), "the allowed connection survived the restart"
        assert not cut.send_and_check("c3", timeout=1.5) and not cut.delivered("c2"), \
            "the cut connection stays cut across the restart\n" + evidence(world)
        check(world, {tcp("cli1", "web1", 81): False, tcp("cli2", "web1", 81): False},
              "vna restarted: still denied")
        model.rules("sg-web", "tcp:7005:10.1.0.13\ntcp:81:10.1.0.13")
        converge(world, tcp("cli2", "web1", 81), True, "the restarted vna applies changes")
        assert s.send_and_check("v4")
