"""Flows follow the binding: a vif bound nowhere is unreachable everywhere; bound, it is
local on its datapath and remote on the others; a migration moves exactly that."""

from __future__ import annotations

from vna_kit import agent_on, arp_request, two_hosts

from vna.pipeline import Table


def world():
    m = two_hosts()
    net = m.network("a", "10.1.0.0/24")
    m.vif("peer", "dp-1", net, "10.1.0.10")
    m.vif("vm", "dp-2", net, "10.1.0.20", bound=False)
    m.router("r", [(net, "10.1.0.1"), (m.network("b", "10.2.0.0/24"), "10.2.0.1")])
    return m


def mentions(agent, value: str) -> list:
    return [f for f in agent.desired.flows().values() if value in map(str, dict(f.match).values())
            or any(value in repr(a) for a in f.actions)]


def test_bound_nowhere_means_no_arp_answer_and_no_route_toward_it_anywhere():
    m = world()
    for dp, ports in (("1", {"if-peer": 1}), ("2", {"if-vm": 2})):
        agent = agent_on(m, dp, ports)
        assert not mentions(agent, "10.1.0.20"), f"dp-{dp} still resolves the address"
    peer = agent_on(m, "1", {"if-peer": 1})
    assert peer.send(arp_request(1, m.mac_of("if-peer"), "10.1.0.10", "10.1.0.20")).dropped


def test_binding_and_migration_move_the_flows():
    m = world()
    m.bind("if-vm", "dp-2")
    one, two = agent_on(m, "1", {"if-peer": 1}), agent_on(m, "2", {"if-vm": 2})
    _, reply = one.send(arp_request(1, m.mac_of("if-peer"), "10.1.0.10", "10.1.0.20")).only()
    assert reply["arp_sha"] == m.mac_of("if-vm")
    assert {f.table for f in mentions(two, m.mac_of("if-vm"))} >= {Table.CLASSIFY}
    assert Table.CLASSIFY not in {f.table for f in mentions(one, m.mac_of("if-vm"))}
    # the port appears on dp-1 and the binding moves there
    m.bind("if-vm", "dp-1")
    one.binding = type(one.binding)("dp-1", ports={"if-peer": 1, "if-vm": 3},
                                    tunnel_ofport=one.binding.tunnel_ofport)
    one.sync(m.snapshot())
    two.sync(m.snapshot())
    assert Table.CLASSIFY in {f.table for f in mentions(one, m.mac_of("if-vm"))}
    assert Table.CLASSIFY not in {f.table for f in mentions(two, m.mac_of("if-vm"))}
    assert one.desired.flows() == one.full() and two.desired.flows() == two.full()
