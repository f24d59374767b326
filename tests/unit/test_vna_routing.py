"""The distributed router: routed on the source datapath, straight to the destination."""

from __future__ import annotations

import pytest
from vna_kit import (
    LOCAL_ROUTED_PATH,
    TUNNEL_PORT,
    Agent,
    ModelBuilder,
    agent_on,
    arp_request,
    gw_mac,
    ip_packet,
    routed_world,
    two_hosts,
)

from vna.view import LocalBinding


@pytest.fixture
def routed() -> ModelBuilder:
    return routed_world()


def test_routed_on_the_source_datapath_and_sent_straight_to_the_destination(routed):
    m = routed
    agent = agent_on(m, "1", {"if-a": 1, "if-h1": 10})
    packet = ip_packet(1, m.mac_of("if-a"), gw_mac(m, "rl-r", "nw-1"), "10.1.0.10", "10.2.0.20")
    port, out = agent.send(packet).only()
    assert port == TUNNEL_PORT
    assert out["tunnel_id"] == m.model["networks"]["nw-2"]["segment_id"]
    assert out["tun_ipv4_dst"] == "192.168.0.2"
    assert out["eth_src"] == gw_mac(m, "rl-r", "nw-2")
    assert out["eth_dst"] == m.mac_of("if-b")
    assert out["ip_ttl"] == 63


def test_routed_packet_is_delivered_by_plain_l2_on_arrival(routed):
    m = routed
    agent = agent_on(m, "2", {"if-b": 5, "if-h2": 10})
    inbound = ip_packet(
        TUNNEL_PORT,
        gw_mac(m, "rl-r", "nw-2"),
        m.mac_of("if-b"),
        "10.1.0.10",
        "10.2.0.20",
        ttl=63,
        tunnel_id=m.model["networks"]["nw-2"]["segment_id"],
    )
    port, out = agent.send(inbound).only()
    assert port == 5 and out["ip_ttl"] == 63


def test_gateway_arp_is_answered_locally(routed):
    m = routed
    agent = agent_on(m, "1", {"if-a": 1})
    _, reply = agent.send(arp_request(1, m.mac_of("if-a"), "10.1.0.10", "10.1.0.1")).only()
    assert reply["arp_sha"] == gw_mac(m, "rl-r", "nw-1") and reply["arp_spa"] == "10.1.0.1"
    # the gateway on the other network is not on this one
    assert agent.send(arp_request(1, m.mac_of("if-a"), "10.1.0.10", "10.2.0.1")).dropped


def test_not_sent_to_the_router_mac_means_not_routed(routed):
    m = routed
    agent = agent_on(m, "1", {"if-a": 1})
    packet = ip_packet(1, m.mac_of("if-a"), m.mac_of("if-b"), "10.1.0.10", "10.2.0.20")
    assert agent.send(packet).dropped


def test_unknown_destination_and_ttl_expiry_are_dropped(routed):
    m = routed
    agent = agent_on(m, "1", {"if-a": 1})
    gw = gw_mac(m, "rl-r", "nw-1")
    assert agent.send(ip_packet(1, m.mac_of("if-a"), gw, "10.1.0.10", "10.2.0.99")).dropped
    assert agent.send(ip_packet(1, m.mac_of("if-a"), gw, "10.1.0.10", "10.3.0.1")).dropped
    expired = agent.send(ip_packet(1, m.mac_of("if-a"), gw, "10.1.0.10", "10.2.0.20", ttl=1))
    assert expired.dropped and expired.ttl_expired


def test_ingress_disabled_port_does_not_route(routed):
    m = routed
    for route in m.model["routes"].values():
        if route["network_uuid"] == "nw-1":
            route["ingress"] = False
    agent = agent_on(m, "1", {"if-a": 1})
    packet = ip_packet(1, m.mac_of("if-a"), gw_mac(m, "rl-r", "nw-1"), "10.1.0.10", "10.2.0.20")
    assert agent.send(packet).dropped


@pytest.fixture
def chain() -> ModelBuilder:
    """nw1 - r1 - nw2 - r2 - nw3, with static routes both ways."""
    m = two_hosts()
    nw1, nw2, nw3 = (m.network(str(i), f"10.{i}.0.0/24") for i in (1, 2, 3))
    m.vif("a", "dp-1", nw1, "10.1.0.10")
    m.vif("m", "dp-2", nw2, "10.2.0.30")
    m.vif("c", "dp-2", nw3, "10.3.0.30")
    r1 = m.router("r1", [(nw1, "10.1.0.1"), (nw2, "10.2.0.1")])
    r2 = m.router("r2", [(nw2, "10.2.0.2"), (nw3, "10.3.0.1")])
    m.route(r1, m.router_port(r1, nw2), nw2, "10.3.0.0/24")
    m.route(r2, m.router_port(r2, nw2), nw2, "10.1.0.0/24")
    return m


def test_router_chain_is_one_pass_with_one_ttl_per_router(chain):
    m = chain
    agent = agent_on(m, "1", {"if-a": 1, "if-h1": 10})
    packet = ip_packet(1, m.mac_of("if-a"), gw_mac(m, "rl-r1", "nw-1"), "10.1.0.10", "10.3.0.30")
    outcome = agent.send(packet)
    port, out = outcome.only()
    assert port == TUNNEL_PORT
    assert out["tunnel_id"] == m.model["networks"]["nw-3"]["segment_id"]
    assert out["tun_ipv4_dst"] == "192.168.0.2"
    assert out["eth_src"] == gw_mac(m, "rl-r2", "nw-3")
    assert out["eth_dst"] == m.mac_of("if-c")
    assert out["ip_ttl"] == 62
    assert [f.table for f in outcome.trace] == LOCAL_ROUTED_PATH
    # one router only toward nw2
    _, mid = agent.send(dict(packet, ipv4_dst="10.2.0.30", eth_dst=packet["eth_dst"])).only()
    assert mid["ip_ttl"] == 63 and mid["eth_src"] == gw_mac(m, "rl-r1", "nw-2")


def test_return_path_through_the_chain(chain):
    m = chain
    agent = agent_on(m, "2", {"if-m": 4, "if-c": 5, "if-h2": 10})
    packet = ip_packet(5, m.mac_of("if-c"), gw_mac(m, "rl-r2", "nw-3"), "10.3.0.30", "10.1.0.10")
    port, out = agent.send(packet).only()
    assert port == TUNNEL_PORT and out["tun_ipv4_dst"] == "192.168.0.1"
    assert out["eth_src"] == gw_mac(m, "rl-r1", "nw-1") and out["ip_ttl"] == 62


def test_longest_prefix_wins():
    m = two_hosts()
    nw1, nw2, nw3 = (m.network(str(i), f"10.{i}.0.0/24") for i in (1, 2, 3))
    m.vif("a", "dp-1", nw1, "10.1.0.10")
    m.vif("x", "dp-1", nw2, "10.9.1.1")  # reachable via the /16 on nw2
    m.vif("y", "dp-1", nw3, "10.9.5.7")  # the /24 on nw3 is more specific
    r = m.router("r", [(nw1, "10.1.0.1"), (nw2, "10.2.0.1"), (nw3, "10.3.0.1")])
    m.route(r, m.router_port(r, nw2), nw2, "10.9.0.0/16")
    m.route(r, m.router_port(r, nw3), nw3, "10.9.5.0/24")
    agent = agent_on(m, "1", {"if-a": 1, "if-x": 2, "if-y": 3})
    gw = gw_mac(m, "rl-r", "nw-1")
    assert agent.send(ip_packet(1, m.mac_of("if-a"), gw, "10.1.0.10", "10.9.1.1")).ports == [2]
    assert agent.send(ip_packet(1, m.mac_of("if-a"), gw, "10.1.0.10", "10.9.5.7")).ports == [3]
    assert agent.desired.conflicts() == []


def mac2mac_world() -> tuple[ModelBuilder, dict[str, str]]:
    m = ModelBuilder()
    dp1, dp2 = m.datapath("1"), m.datapath("2")
    under = m.network("underlay", "192.168.0.0/24", mode="physical")
    h1 = m.host("h1", dp1, under, "192.168.0.1")
    h2 = m.host("h2", dp2, under, "192.168.0.2")
    nw1, nw2 = m.network("1", "10.1.0.0/24"), m.network("2", "10.2.0.0/24")
    m.vif("a", dp1, nw1, "10.1.0.10")
    m.vif("a2", dp2, nw1, "10.1.0.20")
    m.vif("b", dp2, nw2, "10.2.0.20")
    m.router("r", [(nw1, "10.1.0.1"), (nw2, "10.2.0.1")])
    macs = {}
    for dp, host in ((dp1, h1), (dp2, h2)):
        for nw in (nw1, nw2):
            macs[(dp, nw)] = m.model["datapath_networks"][m.dpn(dp, nw, host)][
                "broadcast_mac_address"
            ]
    return m, macs


def test_mac2mac_same_network_encoding_and_restore():
    m, dpn = mac2mac_world()
    sender = Agent(m.snapshot(), LocalBinding("dp-1", "mac2mac", {"if-a": 1, "if-h1": 10}))
    packet = ip_packet(1, m.mac_of("if-a"), m.mac_of("if-a2"), "10.1.0.10", "10.1.0.20")
    port, wire = sender.send(packet).only()
    assert port == 10
    assert wire["eth_src"] == dpn[("dp-1", "nw-1")] and wire["eth_dst"] == dpn[("dp-2", "nw-1")]
    receiver = Agent(m.snapshot(), LocalBinding("dp-2", "mac2mac", {"if-a2": 7, "if-h2": 10}))
    port, got = receiver.send(dict(wire, in_port=10)).only()
    assert port == 7
    assert got["eth_src"] == m.mac_of("if-a") and got["eth_dst"] == m.mac_of("if-a2")


def test_mac2mac_routed_packet_restores_the_router_mac():
    m, dpn = mac2mac_world()
    sender = Agent(m.snapshot(), LocalBinding("dp-1", "mac2mac", {"if-a": 1, "if-h1": 10}))
    gw = gw_mac(m, "rl-r", "nw-1")
    port, wire = sender.send(ip_packet(1, m.mac_of("if-a"), gw, "10.1.0.10", "10.2.0.20")).only()
    assert port == 10 and wire["ip_ttl"] == 63
    assert wire["eth_src"] == dpn[("dp-1", "nw-2")] and wire["eth_dst"] == dpn[("dp-2", "nw-2")]
    receiver = Agent(m.snapshot(), LocalBinding("dp-2", "mac2mac", {"if-b": 8, "if-h2": 10}))
    port, got = receiver.send(dict(wire, in_port=10)).only()
    assert port == 8
    assert got["eth_src"] == gw_mac(m, "rl-r", "nw-2") and got["eth_dst"] == m.mac_of("if-b")


def test_mac2mac_receive_never_forwards_to_another_datapath():
    m, dpn = mac2mac_world()
    receiver = Agent(m.snapshot(), LocalBinding("dp-1", "mac2mac", {"if-a": 1, "if-h1": 10}))
    # addressed to dp-1 on nw1 but for a vif that lives on dp-2
    wire = ip_packet(10, dpn[("dp-2", "nw-1")], dpn[("dp-1", "nw-1")], "10.1.0.20", "10.1.0.20")
    assert receiver.send(wire).dropped
