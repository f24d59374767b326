"""A router answers ICMP echo to its gateway address, on the source datapath."""

from __future__ import annotations

import pytest
from vna_kit import (
    LOCAL_ROUTED_PATH,
    ModelBuilder,
    agent_on,
    gw_mac,
    icmp_packet,
    ip_packet,
    routed_world,
    two_hosts,
)

from vna.features.gateway import KIND_GATEWAY
from vna.pipeline import Table

ECHO_REQUEST, ECHO_REPLY, TIMESTAMP = 8, 0, 13


@pytest.fixture
def routed() -> ModelBuilder:
    return routed_world()


def ping(m: ModelBuilder, dst: str, eth_dst: str | None = None, **kw) -> dict:
    """Vif a (dp-1, port 1) sends ICMP to dst via its gateway MAC on nw-1."""
    eth_dst = eth_dst or gw_mac(m, "rl-r", "nw-1")
    return icmp_packet(1, m.mac_of("if-a"), eth_dst, "10.1.0.10", dst, **kw)


def test_echo_to_the_gateway_is_answered_from_in_port(routed):
    m = routed
    outcome = agent_on(m, "1", {"if-a": 1}).send(ping(m, "10.1.0.1"))
    port, reply = outcome.only()
    assert port == 1
    assert reply["eth_src"] == gw_mac(m, "rl-r", "nw-1") and reply["eth_dst"] == m.mac_of("if-a")
    assert (reply["ipv4_src"], reply["ipv4_dst"]) == ("10.1.0.1", "10.1.0.10")
    assert reply["icmpv4_type"] == ECHO_REPLY and reply["ip_ttl"] == 64
    # answered before routing, without the controller
    until_route = LOCAL_ROUTED_PATH[: LOCAL_ROUTED_PATH.index(Table.ROUTE) + 1]
    assert [f.table for f in outcome.trace] == until_route
    assert outcome.trace[-1].kind == KIND_GATEWAY


def test_every_datapath_answers_for_its_own_vms(routed):
    m = routed
    agent = agent_on(m, "2", {"if-b": 5})
    echo = icmp_packet(5, m.mac_of("if-b"), gw_mac(m, "rl-r", "nw-2"), "10.2.0.20", "10.2.0.1")
    port, reply = agent.send(echo).only()
    assert port == 5 and reply["ipv4_src"] == "10.2.0.1" and reply["icmpv4_type"] == ECHO_REPLY


def test_the_routers_address_on_another_network_answers_too(routed):
    # As Linux routers do: every address of the router, from the gateway's MAC.
    m = routed
    port, reply = agent_on(m, "1", {"if-a": 1}).send(ping(m, "10.2.0.1")).only()
    assert port == 1 and reply["icmpv4_type"] == ECHO_REPLY
    assert (reply["ipv4_src"], reply["ipv4_dst"]) == ("10.2.0.1", "10.1.0.10")
    assert reply["eth_src"] == gw_mac(m, "rl-r", "nw-1")
    # anything else for it is consumed, not routed onto nw-2
    udp = dict(ping(m, "10.2.0.1"), ip_proto=17)
    del udp["icmpv4_type"], udp["icmpv4_code"]
    assert agent_on(m, "1", {"if-a": 1}).send(udp).dropped


def test_a_router_further_along_a_chain_answers_for_its_addresses():
    m = two_hosts()
    nw1, nw2, nw3 = (m.network(str(i), f"10.{i}.0.0/24") for i in (1, 2, 3))
    m.vif("a", "dp-1", nw1, "10.1.0.10")
    r1 = m.router("r1", [(nw1, "10.1.0.1"), (nw2, "10.2.0.1")])
    m.router("r2", [(nw2, "10.2.0.2"), (nw3, "10.3.0.1")])
    m.route(r1, m.router_port(r1, nw2), nw2, "10.3.0.0/24")
    agent = agent_on(m, "1", {"if-a": 1})
    for address in ("10.2.0.2", "10.3.0.1"):
        echo = icmp_packet(1, m.mac_of("if-a"), gw_mac(m, "rl-r1", "nw-1"), "10.1.0.10",
                           address)
        _, reply = agent.send(echo).only()
        assert reply["ipv4_src"] == address and reply["icmpv4_type"] == ECHO_REPLY


@pytest.mark.parametrize(
    "packet",
    [
        pytest.param(dict(icmp_type=ECHO_REPLY), id="echo-reply"),
        pytest.param(dict(icmp_type=TIMESTAMP), id="timestamp"),
        pytest.param(None, id="udp"),
    ],
)
def test_anything_else_to_the_gateway_is_consumed_not_routed(routed, packet):
    m = routed
    if packet is None:
        sent = ip_packet(1, m.mac_of("if-a"), gw_mac(m, "rl-r", "nw-1"), "10.1.0.10", "10.1.0.1")
    else:
        sent = ping(m, "10.1.0.1", **packet)
    outcome = agent_on(m, "1", {"if-a": 1}).send(sent)
    assert outcome.dropped
    assert outcome.trace[-1].table == Table.ROUTE and outcome.trace[-1].kind == KIND_GATEWAY


def test_echo_to_the_gateway_ip_but_another_mac_is_not_answered(routed):
    m = routed
    assert agent_on(m, "1", {"if-a": 1}).send(ping(m, "10.1.0.1", m.mac_of("if-b"))).dropped


def test_ingress_disabled_port_does_not_answer(routed):
    m = routed
    for route in m.model["routes"].values():
        if route["network_uuid"] == "nw-1":
            route["ingress"] = False
    assert agent_on(m, "1", {"if-a": 1}).send(ping(m, "10.1.0.1")).dropped


def test_two_routers_on_one_network_each_answer_their_own_address(routed):
    m = routed
    nw3 = m.network("3", "10.3.0.0/24")
    m.router("r2", [("nw-2", "10.2.0.2"), (nw3, "10.3.0.1")])
    agent = agent_on(m, "2", {"if-b": 5})
    for link, address in (("rl-r", "10.2.0.1"), ("rl-r2", "10.2.0.2")):
        echo = icmp_packet(5, m.mac_of("if-b"), gw_mac(m, link, "nw-2"), "10.2.0.20", address)
        _, reply = agent.send(echo).only()
        assert reply["eth_src"] == gw_mac(m, link, "nw-2") and reply["ipv4_src"] == address
    assert agent.desired.conflicts() == []


def test_changing_the_gateway_address_moves_the_responder(routed):
    m = routed
    agent = agent_on(m, "1", {"if-a": 1})
    port = m.router_port("rl-r", "nw-1")
    lease = next(u for u, r in m.model["ip_leases"].items() if r["interface_uuid"] == port)
    m.model["ip_leases"][lease]["ipv4_address"] = "10.1.0.254"
    agent.sync(m.snapshot())
    assert agent.desired.flows() == agent.full()
    assert agent.send(ping(m, "10.1.0.1")).dropped
    assert agent.send(ping(m, "10.1.0.254")).only()[1]["ipv4_src"] == "10.1.0.254"
    m.delete("ip_leases", lease)
    agent.sync(m.snapshot())
    assert agent.desired.flows() == agent.full()
    assert agent.send(ping(m, "10.1.0.254")).dropped


def test_flow_count_is_two_per_ingress_port_and_address(routed):
    flows = agent_on(routed, "1", {"if-a": 1}).desired.owner_flows(("route_link", "rl-r"))
    gateway = [f for f in flows if f.kind == KIND_GATEWAY]
    # echo + drop for each of the router's 2 addresses, per port; + per port 2 route
    # entries and the unreachable catch-all
    assert len(gateway) == 8 and len(flows) == 14
