"""Translations on the gateway (vna.features.nat): which flows, where.  The simulator does
not rewrite addresses for nat(); what conntrack does with them is proven by packets in
tests/e2e/test_external.py."""

from __future__ import annotations

from vna_kit import SEGMENT, TUNNEL_PORT, Agent, ModelBuilder, p2v_world

from vna.actions import Ct, Nat
from vna.features.nat import KIND_NAT
from vna.pipeline import NAT_ZONE, Table
from vna.view import LocalBinding

PORT = "if-rl-r-nw-pub"


def gateway(m: ModelBuilder, dp: str = "1") -> Agent:
    ports = {"if-a": 1, "if-h1": 10, "if-p1": SEGMENT} if dp == "1" else \
        {"if-b": 1, "if-h2": 10, "if-p2": SEGMENT}
    return Agent(m.snapshot(), LocalBinding(f"dp-{dp}", ports=ports, tunnel_ofport=TUNNEL_PORT))


def nat_flows(agent: Agent) -> list:
    return sorted((f for f in agent.desired.flows().values() if f.kind == KIND_NAT),
                  key=lambda f: (f.table, -f.priority, f.match))


def translation(m: ModelBuilder, mode: str, **extra) -> str:
    return m.add("translations", f"tr-{mode}", interface_uuid=PORT, mode=mode,
                 passthrough=False, **extra)


def static(m: ModelBuilder, tr: str, global_ip: str, private_ip: str,
           ports: tuple[int, int] | None = None) -> None:
    m.add("translation_static_addresses", f"tsa-{global_ip}", translation_uuid=tr,
          route_link_uuid=None, ingress_ipv4_address=global_ip, egress_ipv4_address=private_ip,
          ingress_port_number=ports[0] if ports else None,
          egress_port_number=ports[1] if ports else None, leased=True)
    m.ip(PORT, "nw-pub", global_ip, m.model["ip_leases"][f"il-{PORT}-nw-pub-172.16.0.4"][
        "mac_lease_uuid"])


def actions_in(flows: list, table: Table) -> list:
    return [a for f in flows if f.table == table for a in f.actions]


def test_without_translations_nothing_is_translated():
    assert nat_flows(gateway(p2v_world())) == []


def test_a_global_address_is_translated_both_ways_on_the_gateway_only():
    m = p2v_world()
    static(m, translation(m, "static_address"), "172.16.0.50", "10.1.0.10")
    flows = nat_flows(gateway(m))
    assert actions_in(flows, Table.DNAT) == [Ct(zone=NAT_ZONE, nat=Nat(), table=Table.DNAT_NEW)]
    assert actions_in(flows, Table.SNAT) == [Ct(zone=NAT_ZONE, nat=Nat(), table=Table.SNAT_NEW)]
    # a new connection to the global address is translated; any other new one is
    # committed untranslated (so that its replies are not translated either)
    assert actions_in(flows, Table.DNAT_NEW) == [
        Ct(commit=True, zone=NAT_ZONE, nat=Nat("dst", "10.1.0.10"), table=Table.ROUTE),
        Ct(commit=True, zone=NAT_ZONE, table=Table.ROUTE)]
    assert actions_in(flows, Table.SNAT_NEW) == [
        Ct(commit=True, zone=NAT_ZONE, nat=Nat("src", "172.16.0.50"), table=Table.L2_LOOKUP),
        Ct(commit=True, zone=NAT_ZONE, table=Table.L2_LOOKUP)]
    assert nat_flows(gateway(m, "2")) == []  # dp-2 forwards to dp-1, which translates
    # the global address is answered on the segment by the gateway (a lease of the port)
    answers = [f for f in gateway(m).desired.flows().values() if f.table == Table.ARP
               and ("arp_tpa", "172.16.0.50") in f.match and ("arp_op", 1) in f.match]
    assert len(answers) == 1


def test_a_port_forward_translates_tcp_and_udp_on_that_port_only():
    m = p2v_world()
    static(m, translation(m, "static_address"), "172.16.0.51", "10.2.0.20", (8080, 80))
    flows = [f for f in nat_flows(gateway(m)) if f.table == Table.DNAT_NEW
             and dict(f.match).get("ipv4_dst")]
    assert {(dict(f.match).get("ip_proto"), dict(f.match).get("tcp_dst"),
             dict(f.match).get("udp_dst")) for f in flows} == {(6, 8080, None), (17, None, 8080)}
    assert {f.actions[0].nat for f in flows} == {Nat("dst", "10.2.0.20", port_min=80)}


def test_snat_uses_the_ports_own_address_below_the_static_entries():
    m = p2v_world()
    static(m, translation(m, "static_address"), "172.16.0.50", "10.1.0.10")
    translation(m, "snat")
    snat = [f for f in nat_flows(gateway(m)) if f.table == Table.SNAT_NEW]
    assert [f.actions[0].nat for f in snat] == [Nat("src", "172.16.0.50"), Nat("src", "172.16.0.4"),
                                               None]  # the last: untranslated, committed
    assert snat[0].priority > snat[1].priority > snat[2].priority


def test_enable_route_translation_drops_what_no_entry_translates():
    m = p2v_world()
    m.model["interfaces"][PORT]["enable_route_translation"] = True
    flows = nat_flows(gateway(m))
    drops = [f for f in flows if not f.actions and f.goto is None]
    assert {f.table for f in drops} == {Table.DNAT_NEW, Table.SNAT_NEW}
    # ...but the port's own address (echo) still reaches ROUTE
    assert [dict(f.match)["ipv4_dst"] for f in flows if f.goto == Table.ROUTE] == ["172.16.0.4"]
    translation(m, "static_address", )
    m.model["translations"]["tr-static_address"]["passthrough"] = True
    assert not [f for f in nat_flows(gateway(m)) if not f.actions and f.goto is None]
