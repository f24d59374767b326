"""Security groups and static filters (vna.features.acl), evaluated on one agent's desired
flows by the flow simulator, whose connection tracker keeps its state across flow
changes as OVS's does.  The e2e suite proves the same with real packets."""

from __future__ import annotations

import pytest
from vna_kit import TUNNEL_PORT, Agent, ModelBuilder, gw_mac, ip_packet, two_hosts

from vna.features.acl import KIND_GROUP, KIND_VIF
from vna.flows import KIND_SHIFT
from vna.flowsim import Outcome, Pipeline
from vna.pipeline import KIND_CLAUSE, Table
from vna.view import LocalBinding

PORTS = {"if-a1": 1, "if-a2": 2, "if-c0": 3, "if-h1": 10}
TCP, UDP, ICMP = 6, 17, 1


class Host:
    """dp-1's agent plus a connection tracker that survives flow changes."""

    def __init__(self, m: ModelBuilder) -> None:
        self.m = m
        self.agent = Agent(m.snapshot(), LocalBinding("dp-1", ports=PORTS,
                                                       tunnel_ofport=TUNNEL_PORT))
        self.conntrack: dict = {}

    def sync(self) -> None:
        self.agent.sync(self.m.snapshot())
        assert self.agent.desired.flows() == self.agent.full()
        assert self.agent.desired.conflicts() == []

    def send(self, packet: dict) -> Outcome:
        sim = Pipeline(self.agent.desired.flows().values())
        sim.conntrack = self.conntrack
        return sim.run(packet)

    # --- packets ----------------------------------------------------------------------
    def l4(self, proto: int, sport: int, dport: int) -> dict:
        names = {TCP: ("tcp_src", "tcp_dst"), UDP: ("udp_src", "udp_dst")}.get(proto)
        if names is None:
            return {"ip_proto": proto, "icmpv4_type": 8, "icmpv4_code": 0}
        return {"ip_proto": proto, names[0]: sport, names[1]: dport}

    def local(self, src: str, dst: str, proto: int = TCP, sport: int = 40000,
              dport: int = 22) -> dict:
        """From local vif `src` to `dst` on nw-1 (or routed, when dst is not on it)."""
        ips = {"if-a1": "10.1.0.10", "if-a2": "10.1.0.11", "if-b1": "10.1.0.20",
               "if-c0": "10.2.0.10", "if-c1": "10.2.0.20"}
        same = ips[src].rsplit(".", 1)[0] == ips[dst].rsplit(".", 1)[0]
        network = "nw-" + ips[src].split(".")[1]
        eth_dst = self.m.mac_of(dst) if same else gw_mac(self.m, "rl-r", network)
        return ip_packet(PORTS[src], self.m.mac_of(src), eth_dst, ips[src], ips[dst],
                         **self.l4(proto, sport, dport))

    def from_tunnel(self, src_ip: str, eth_src: str, proto: int = TCP, sport: int = 40000,
                    dport: int = 22, ttl: int = 64) -> dict:
        """To a1 from another datapath (a peer on nw-1, or routed there on the source
        host), over the tunnel."""
        segment = self.m.model["networks"]["nw-1"]["segment_id"]
        return ip_packet(TUNNEL_PORT, eth_src, self.m.mac_of("if-a1"), src_ip, "10.1.0.10",
                         ttl=ttl, tunnel_id=segment, **self.l4(proto, sport, dport))

    def reply(self, packet: dict, src_port: int, eth_src: str, eth_dst: str) -> dict:
        swapped = dict(packet, in_port=src_port, eth_src=eth_src, eth_dst=eth_dst,
                       ipv4_src=packet["ipv4_dst"], ipv4_dst=packet["ipv4_src"])
        swapped.pop("tunnel_id", None)
        for a, b in (("tcp_src", "tcp_dst"), ("udp_src", "udp_dst")):
            if a in packet:
                swapped[a], swapped[b] = packet[b], packet[a]
        return swapped


@pytest.fixture
def host() -> Host:
    """nw-1 10.1.0.0/24: a1 .10, a2 .11 on dp-1, b1 .20 on dp-2; nw-2 10.2.0.0/24: c0
    .10 on dp-1, c1 .20 on dp-2; router rl-r between them."""
    m = two_hosts()
    nw1, nw2 = m.network("1", "10.1.0.0/24"), m.network("2", "10.2.0.0/24")
    m.vif("a1", "dp-1", nw1, "10.1.0.10")
    m.vif("a2", "dp-1", nw1, "10.1.0.11")
    m.vif("b1", "dp-2", nw1, "10.1.0.20")
    m.vif("c0", "dp-1", nw2, "10.2.0.10")
    m.vif("c1", "dp-2", nw2, "10.2.0.20")
    m.router("r", [(nw1, "10.1.0.1"), (nw2, "10.2.0.1")])
    return Host(m)


def group(h: Host, name: str, rules: str = "", *members: str) -> str:
    sg = h.m.add("security_groups", f"sg-{name}", display_name=name, description=None,
                 rules=rules)
    for iface in members:
        join(h, iface, sg)
    return sg


def join(h: Host, iface: str, sg: str) -> None:
    h.m.add("interface_security_groups", f"isg-{iface}-{sg}", interface_uuid=iface,
            security_group_uuid=sg)


def leave(h: Host, iface: str, sg: str) -> None:
    h.m.delete("interface_security_groups", f"isg-{iface}-{sg}")


def delivered(out: Outcome, port: int = 1) -> bool:
    return out.ports == [port]


def test_without_groups_everything_is_delivered_and_nothing_is_tracked(host):
    assert delivered(host.send(host.local("if-a2", "if-a1", dport=23)))
    assert not any(f.kind in (KIND_VIF, KIND_GROUP) for f in host.agent.desired.flows().values())
    assert host.conntrack == {}


def test_a_rule_admits_its_port_and_sources_only_on_every_path(host):
    group(host, "web", "tcp:22:10.1.0.0/24\nudp:53:10.1.0.20", "if-a1")
    host.sync()
    assert delivered(host.send(host.local("if-a2", "if-a1", dport=22)))  # same host
    assert not delivered(host.send(host.local("if-a2", "if-a1", dport=23)))
    assert not delivered(host.send(host.local("if-a2", "if-a1", proto=UDP, dport=53)))
    b1 = host.m.mac_of("if-b1")
    assert delivered(host.send(host.from_tunnel("10.1.0.20", b1, dport=22)))  # other host
    assert delivered(host.send(host.from_tunnel("10.1.0.20", b1, proto=UDP, dport=53)))
    assert not delivered(host.send(host.from_tunnel("10.1.0.20", b1, proto=ICMP)))
    # routed: from 10.2.0.0/24, outside the rule's source, on this host and from another
    assert not delivered(host.send(host.local("if-c0", "if-a1", dport=22)))
    router = gw_mac(host.m, "rl-r", "nw-1")
    assert not delivered(host.send(host.from_tunnel("10.2.0.20", router, dport=22, ttl=63)))
    host.m.model["security_groups"]["sg-web"]["rules"] = "tcp:22:0.0.0.0/0"
    host.sync()
    assert delivered(host.send(host.local("if-c0", "if-a1", dport=22)))
    assert delivered(host.send(host.from_tunnel("10.2.0.20", router, dport=22, ttl=63)))


def test_port_ranges_and_icmp_types(host):
    group(host, "r", "tcp:1000-1010:0.0.0.0/0\nicmp:8:10.1.0.11", "if-a1")
    host.sync()
    for port, ok in ((999, False), (1000, True), (1007, True), (1010, True), (1011, False)):
        assert delivered(host.send(host.local("if-a2", "if-a1", dport=port))) is ok, port
    assert delivered(host.send(host.local("if-a2", "if-a1", proto=ICMP)))
    timestamp = dict(host.local("if-a2", "if-a1", proto=ICMP), icmpv4_type=13)
    assert not delivered(host.send(timestamp))


def test_replies_of_own_connections_pass_unsolicited_inbound_does_not(host):
    group(host, "closed", "", "if-a1")
    host.sync()
    out = host.local("if-a1", "if-a2", dport=80)
    assert delivered(host.send(out), 2)
    a1, a2 = host.m.mac_of("if-a1"), host.m.mac_of("if-a2")
    assert delivered(host.send(host.reply(out, 2, a2, a1)))
    assert not delivered(host.send(host.local("if-a2", "if-a1", sport=41000, dport=80)))
    # the same across hosts: the reply comes back through the tunnel
    to_b1 = host.local("if-a1", "if-b1", sport=40001, dport=443)
    assert host.send(to_b1).ports == [TUNNEL_PORT]
    back = host.from_tunnel("10.1.0.20", host.m.mac_of("if-b1"), sport=443, dport=40001)
    assert delivered(host.send(back))
    assert not delivered(host.send(host.from_tunnel("10.1.0.20", host.m.mac_of("if-b1"),
                                                    sport=443, dport=40002)))


def test_members_of_a_group_accept_each_other_and_joining_is_enough(host):
    sg = group(host, "iso", "", "if-a1", "if-a2")
    host.sync()
    assert delivered(host.send(host.local("if-a2", "if-a1", dport=5555)))
    b1 = host.m.mac_of("if-b1")
    assert not delivered(host.send(host.from_tunnel("10.1.0.20", b1, dport=5555)))
    join(host, "if-b1", sg)  # b1 is on dp-2: its address becomes a source here
    host.sync()
    assert delivered(host.send(host.from_tunnel("10.1.0.20", b1, sport=40100, dport=5555)))


def test_a_rule_naming_a_group_follows_its_membership(host):
    web = group(host, "web", "", "if-b1")
    group(host, "db", f"tcp:5432:{web}", "if-a1")
    host.sync()
    b1 = host.m.mac_of("if-b1")
    assert delivered(host.send(host.from_tunnel("10.1.0.20", b1, dport=5432)))
    assert not delivered(host.send(host.local("if-a2", "if-a1", dport=5432)))
    join(host, "if-a2", web)
    host.sync()
    assert delivered(host.send(host.local("if-a2", "if-a1", sport=40200, dport=5432)))
    leave(host, "if-b1", web)
    host.sync()
    assert not delivered(host.send(host.from_tunnel("10.1.0.20", b1, sport=40300, dport=5432)))


def test_removing_the_rule_cuts_an_established_connection_and_readding_resumes_it(host):
    group(host, "web", "tcp:22:10.1.0.11", "if-a1")
    host.sync()
    syn = host.local("if-a2", "if-a1", dport=22)
    a1, a2 = host.m.mac_of("if-a1"), host.m.mac_of("if-a2")
    reply = host.reply(syn, 1, a1, a2)
    assert delivered(host.send(syn)) and delivered(host.send(reply), 2)
    assert delivered(host.send(syn))  # established
    host.m.model["security_groups"]["sg-web"]["rules"] = ""
    host.sync()
    assert not delivered(host.send(syn))  # cut: and now marked blocked...
    assert not delivered(host.send(reply), 2)  # ...so the VM's replies are dropped too
    host.m.model["security_groups"]["sg-web"]["rules"] = "tcp:22:10.1.0.11"
    host.sync()
    assert delivered(host.send(syn)) and delivered(host.send(reply), 2)


def test_leaving_the_last_group_cuts_nothing_but_stops_filtering(host):
    group(host, "closed", "", "if-a1")
    host.sync()
    assert not delivered(host.send(host.local("if-a2", "if-a1", dport=9)))
    leave(host, "if-a1", "sg-closed")
    host.sync()
    assert delivered(host.send(host.local("if-a2", "if-a1", dport=9)))
    assert not any(f.kind in (KIND_VIF, KIND_GROUP) for f in host.agent.desired.flows().values())


def test_ingress_filtering_enabled_without_a_group_accepts_only_replies(host):
    host.m.model["interfaces"]["if-a1"]["ingress_filtering_enabled"] = True
    host.sync()
    assert not delivered(host.send(host.local("if-a2", "if-a1", dport=22)))
    out = host.local("if-a1", "if-a2", dport=22)
    assert delivered(host.send(out), 2)
    assert delivered(host.send(host.reply(out, 2, host.m.mac_of("if-a2"),
                                          host.m.mac_of("if-a1"))))


def static(h: Host, fil: str, protocol: str, address: str, prefix: int, passthrough: bool,
           port: int | None = None) -> None:
    h.m.add("filter_statics", f"fs-{len(h.m.model['filter_statics'])}", filter_uuid=fil,
            protocol=protocol, ipv4_address=address, ipv4_prefix=prefix, port_number=port,
            passthrough=passthrough)


def test_static_filters_default_drop_both_ways_and_pass_what_they_list(host):
    """OpenVNet's filter.yml: fil-test3 passes tcp from 10.101.0.10 and udp 1344 from .13."""
    host.m.model["interfaces"]["if-a1"]["enable_filtering"] = True
    host.m.model.setdefault("filter_statics", {})
    fil = host.m.add("filters", "fil-1", interface_uuid="if-a1", mode="static",
                     ingress_passthrough=False, egress_passthrough=False)
    static(host, fil, "tcp", "10.1.0.11", 32, True, 0)
    static(host, fil, "udp", "10.1.0.20", 32, True, 1344)
    host.sync()
    assert delivered(host.send(host.local("if-a2", "if-a1", dport=7452)))
    b1 = host.m.mac_of("if-b1")
    assert not delivered(host.send(host.from_tunnel("10.1.0.20", b1, dport=7452)))
    assert delivered(host.send(host.from_tunnel("10.1.0.20", b1, proto=UDP, dport=1344)))
    assert not delivered(host.send(host.from_tunnel("10.1.0.20", b1, proto=UDP, dport=1345)))
    # egress: default drop, except to what the entries name (to 10.1.0.11, any tcp port)
    assert not delivered(host.send(host.local("if-a1", "if-c0", proto=ICMP)), 3)
    assert delivered(host.send(host.local("if-a1", "if-a2", sport=40500, dport=8080)), 2)
    host.m.model["filters"][fil]["egress_passthrough"] = True
    static(host, fil, "icmp", "10.2.0.0", 24, False)  # a drop beats passthrough
    host.sync()
    assert delivered(host.send(host.local("if-a1", "if-c0", proto=UDP, dport=9)), 3)
    assert not delivered(host.send(host.local("if-a1", "if-c0", proto=ICMP)), 3)


def test_static_drop_beats_a_group_rule_and_arp_drop_entries(host):
    host.m.model["interfaces"]["if-a1"]["enable_filtering"] = True
    host.m.model.setdefault("filter_statics", {})
    fil = host.m.add("filters", "fil-1", interface_uuid="if-a1", mode="static",
                     ingress_passthrough=False, egress_passthrough=True)
    group(host, "web", "tcp:22:0.0.0.0/0", "if-a1")
    static(host, fil, "tcp", "10.1.0.11", 32, False, 22)
    static(host, fil, "arp", "10.1.0.11", 32, False)
    host.sync()
    assert not delivered(host.send(host.local("if-a2", "if-a1", dport=22)))
    b1 = host.m.mac_of("if-b1")
    assert delivered(host.send(host.from_tunnel("10.1.0.20", b1, dport=22)))
    arp = {"in_port": 1, "eth_src": host.m.mac_of("if-a1"), "eth_dst": "ff:ff:ff:ff:ff:ff",
           "eth_type": 0x0806, "arp_op": 1, "arp_sha": host.m.mac_of("if-a1"),
           "arp_spa": "10.1.0.10", "arp_tha": "00:00:00:00:00:00"}
    assert host.send(dict(arp, arp_tpa="10.1.0.11")).dropped
    assert host.send(dict(arp, arp_tpa="10.1.0.20")).ports == [1]  # answered


def flow_count(members: int, rules: int) -> int:
    """Flows on dp-1 for a group of `members` remote members and `rules` rules, named by
    another group that holds the one local vif."""
    m = two_hosts()
    nw = m.network("1", "10.0.0.0/16")
    m.vif("a1", "dp-1", nw, "10.0.0.10")
    for i in range(members):
        m.vif(f"m{i}", "dp-2", nw, f"10.0.{1 + i // 250}.{1 + i % 250}")
    text = "\n".join(f"tcp:{1000 + i}:0.0.0.0/0" for i in range(rules))
    h = Host(m)
    web = group(h, "web", text, *[f"if-m{i}" for i in range(members)])
    group(h, "db", f"tcp:5432:{web}\n{text}", "if-a1")
    agent = Agent(m.snapshot(), LocalBinding("dp-1", ports={"if-a1": 1},
                                             tunnel_ofport=TUNNEL_PORT))
    return len(agent.desired.flows())


def test_flows_grow_with_members_plus_rules_not_their_product():
    base = flow_count(10, 5)
    per_member = (flow_count(30, 5) - base) / 20
    per_rule = (flow_count(10, 25) - base) / 20
    # each remote member adds its own flows (L2 entry, transport...) plus ONE clause flow
    # for its address, whatever the rule count; each rule a conj_id flow and a port flow
    assert flow_count(30, 25) - base == 20 * per_member + 20 * per_rule
    assert per_rule == 2


def test_clause_flows_are_merged_across_groups(host):
    group(host, "one", "tcp:22:0.0.0.0/0", "if-a1")
    group(host, "two", "tcp:22:0.0.0.0/0", "if-a2")
    host.sync()
    port22 = [f for f in host.agent.desired.flows().values()
              if f.kind == KIND_CLAUSE and ("tcp_dst", 22) in f.match]
    assert len(port22) == 1 and len(port22[0].actions) == 2
    assert all(f.table == Table.TO_VM_ACL for f in host.agent.desired.flows().values()
               if f.cookie >> KIND_SHIFT == KIND_CLAUSE)
    assert delivered(host.send(host.local("if-a1", "if-a2", dport=22)), 2)
    assert delivered(host.send(host.local("if-a2", "if-a1", dport=22)))
