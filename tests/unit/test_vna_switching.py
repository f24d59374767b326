"""L2, ARP responder and anti-spoofing, evaluated on the desired flows of one agent."""

from __future__ import annotations

import pytest
from vna_kit import TUNNEL_PORT, Agent, ModelBuilder, arp_request, ip_packet, two_hosts

from vna.view import LocalBinding

BCAST = "ff:ff:ff:ff:ff:ff"


@pytest.fixture
def world() -> ModelBuilder:
    m = two_hosts()
    dp1, dp2 = "dp-1", "dp-2"
    nw1, nw2 = m.network("1", "10.1.0.0/24"), m.network("2", "10.2.0.0/24")
    m.vif("a1", dp1, nw1, "10.1.0.10")
    m.vif("a2", dp1, nw1, "10.1.0.11")
    m.vif("b1", dp2, nw1, "10.1.0.20")
    m.vif("c0", dp1, nw2, "10.2.0.10")
    m.vif("c1", dp2, nw2, "10.2.0.20")
    return m


def dp1_agent(m: ModelBuilder, **kw) -> Agent:
    ports = {"if-a1": 1, "if-a2": 2, "if-c0": 3, "if-h1": 10}
    return Agent(m.snapshot(), LocalBinding("dp-1", ports=ports, tunnel_ofport=TUNNEL_PORT, **kw))


def from_a1(m: ModelBuilder, dst_iface: str, dst_ip: str, **kw) -> dict:
    return ip_packet(1, m.mac_of("if-a1"), m.mac_of(dst_iface), "10.1.0.10", dst_ip, **kw)


def test_same_network_same_datapath_is_delivered(world):
    agent = dp1_agent(world)
    port, pkt = agent.send(from_a1(world, "if-a2", "10.1.0.11")).only()
    assert port == 2
    assert pkt["eth_dst"] == world.mac_of("if-a2") and pkt["ip_ttl"] == 64


def test_same_network_other_datapath_goes_through_the_tunnel(world):
    agent = dp1_agent(world)
    port, pkt = agent.send(from_a1(world, "if-b1", "10.1.0.20")).only()
    assert port == TUNNEL_PORT
    assert pkt["tunnel_id"] == world.model["networks"]["nw-1"]["segment_id"]
    assert pkt["tun_ipv4_dst"] == "192.168.0.2"
    assert pkt["eth_dst"] == world.mac_of("if-b1")


def test_tunnel_receive_delivers_locally_and_never_back_out(world):
    agent = dp1_agent(world)
    segment = world.model["networks"]["nw-1"]["segment_id"]
    inbound = ip_packet(
        TUNNEL_PORT,
        world.mac_of("if-b1"),
        world.mac_of("if-a1"),
        "10.1.0.20",
        "10.1.0.10",
        tunnel_id=segment,
    )
    assert agent.send(inbound).ports == [1]
    # addressed to a vif that is remote from here: no hairpin back into the underlay
    to_remote = dict(inbound, eth_dst=world.mac_of("if-b1"))
    assert agent.send(to_remote).dropped
    # wrong segment: not classified at all
    assert agent.send(dict(inbound, tunnel_id=segment + 99)).dropped


def test_different_networks_without_router_are_isolated(world):
    agent = dp1_agent(world)
    assert agent.send(from_a1(world, "if-c0", "10.2.0.10")).dropped
    assert agent.send(from_a1(world, "if-c1", "10.2.0.20")).dropped


def test_broadcast_and_unknown_unicast_are_not_flooded(world):
    agent = dp1_agent(world)
    assert agent.send(ip_packet(1, world.mac_of("if-a1"), BCAST, "10.1.0.10", "10.1.0.255")).dropped
    assert agent.send(
        ip_packet(1, world.mac_of("if-a1"), "52:54:00:99:99:99", "10.1.0.10", "10.1.0.99")
    ).dropped


@pytest.mark.parametrize("target, owner", [("10.1.0.11", "if-a2"), ("10.1.0.20", "if-b1")])
def test_arp_for_a_vm_is_answered_locally(world, target, owner):
    agent = dp1_agent(world)
    a1 = world.mac_of("if-a1")
    port, reply = agent.send(arp_request(1, a1, "10.1.0.10", target)).only()
    assert port == 1  # IN_PORT
    assert reply["arp_op"] == 2
    assert reply["eth_src"] == reply["arp_sha"] == world.mac_of(owner)
    assert reply["eth_dst"] == reply["arp_tha"] == a1
    assert reply["arp_spa"] == target and reply["arp_tpa"] == "10.1.0.10"


def test_other_arp_is_dropped(world):
    agent = dp1_agent(world)
    a1 = world.mac_of("if-a1")
    assert agent.send(arp_request(1, a1, "10.1.0.10", "10.1.0.99")).dropped  # unknown IP
    assert agent.send(arp_request(1, a1, "10.1.0.10", "10.2.0.10")).dropped  # other network
    reply = dict(arp_request(1, a1, "10.1.0.10", "10.1.0.11"), arp_op=2)
    assert agent.send(reply).dropped


@pytest.mark.parametrize(
    "change",
    [
        {"eth_src": "52:54:00:66:66:66"},
        {"ipv4_src": "10.1.0.11"},
        {"ipv4_src": "10.2.0.10"},
        {"in_port": 2},  # a1's MAC from a2's port
    ],
)
def test_spoofed_ip_traffic_is_dropped(world, change):
    agent = dp1_agent(world)
    packet = from_a1(world, "if-a2", "10.1.0.11")
    assert agent.send(packet).ports == [2]
    assert agent.send({**packet, **change}).dropped


@pytest.mark.parametrize(
    "change",
    [{"arp_sha": "52:54:00:66:66:66"}, {"arp_spa": "10.1.0.11"}, {"arp_spa": "0.0.0.0"}],
)
def test_spoofed_arp_is_dropped(world, change):
    agent = dp1_agent(world)
    packet = arp_request(1, world.mac_of("if-a1"), "10.1.0.10", "10.1.0.11")
    assert not agent.send(packet).dropped
    assert agent.send({**packet, **change}).dropped


def test_overlapping_ranges_in_unrouted_networks_are_independent():
    m = ModelBuilder()
    dp1 = m.datapath("1")
    red, blue = m.network("red", "10.0.0.0/24"), m.network("blue", "10.0.0.0/24")
    m.vif("r1", dp1, red, "10.0.0.1")
    m.vif("r2", dp1, red, "10.0.0.2")
    m.vif("b1", dp1, blue, "10.0.0.1")
    m.vif("b2", dp1, blue, "10.0.0.2")
    ports = {"if-r1": 1, "if-r2": 2, "if-b1": 3, "if-b2": 4}
    agent = Agent(m.snapshot(), LocalBinding(dp1, ports=ports))
    r1, r2, b1, b2 = (m.mac_of(f"if-{n}") for n in ("r1", "r2", "b1", "b2"))
    assert agent.send(ip_packet(1, r1, r2, "10.0.0.1", "10.0.0.2")).ports == [2]
    assert agent.send(ip_packet(3, b1, b2, "10.0.0.1", "10.0.0.2")).ports == [4]
    assert agent.send(ip_packet(1, r1, b2, "10.0.0.1", "10.0.0.2")).dropped
    _, reply = agent.send(arp_request(3, b1, "10.0.0.1", "10.0.0.2")).only()
    assert reply["arp_sha"] == b2
    assert agent.desired.conflicts() == []


def test_flow_count_per_vif(world):
    agent = dp1_agent(world)
    local = agent.desired.owner_flows(("interface", "if-a1"))
    remote = agent.desired.owner_flows(("interface", "if-b1"))
    # classifier 1, antispoof 2 (IPv4 + ARP), ARP responder 1, L2 1, OUTPUT 1, ARP_RESOLVE 1
    assert len(local) == 7
    # ARP responder 1, L2 1, OUTPUT (tunnel send) 1, ARP_RESOLVE 1
    assert len(remote) == 4
