"""Physical networks: bridged to the datapath's host port, no isolation, anti-spoof kept."""

from __future__ import annotations

from vna_kit import Agent, ModelBuilder, arp_request, ip_packet

from vna.view import LocalBinding

BCAST = "ff:ff:ff:ff:ff:ff"
PHYS = 20


def world() -> tuple[ModelBuilder, Agent]:
    m = ModelBuilder()
    dp1, dp2 = m.datapath("1"), m.datapath("2")
    lan = m.network("lan", "172.16.0.0/24", mode="physical")
    eth1 = m.interface("eth1", "host", dp1)
    m.dpn(dp1, lan, eth1)
    m.vif("p1", dp1, lan, "172.16.0.11")
    m.vif("p2", dp1, lan, "172.16.0.12")
    m.vif("q1", dp2, lan, "172.16.0.21")
    agent = Agent(m.snapshot(), LocalBinding(dp1, ports={"if-p1": 1, "if-p2": 2, eth1: PHYS}))
    return m, agent


def test_known_local_mac_is_delivered_directly():
    m, agent = world()
    packet = ip_packet(1, m.mac_of("if-p1"), m.mac_of("if-p2"), "172.16.0.11", "172.16.0.12")
    assert agent.send(packet).ports == [2]


def test_unknown_and_remote_unicast_go_out_the_physical_port():
    m, agent = world()
    to_remote = ip_packet(1, m.mac_of("if-p1"), m.mac_of("if-q1"), "172.16.0.11", "172.16.0.21")
    assert sorted(agent.send(to_remote).ports) == [2, PHYS]


def test_broadcast_floods_to_local_ports_and_physical_but_not_back():
    m, agent = world()
    arp = arp_request(1, m.mac_of("if-p1"), "172.16.0.11", "172.16.0.99")
    assert sorted(agent.send(arp).ports) == [2, PHYS]
    from_lan = ip_packet(PHYS, "00:11:22:33:44:55", BCAST, "172.16.0.200", "172.16.0.255")
    assert sorted(agent.send(from_lan).ports) == [1, 2]
    unicast_in = dict(from_lan, eth_dst=m.mac_of("if-p1"))
    assert agent.send(unicast_in).ports == [1]


def test_vifs_on_physical_networks_keep_anti_spoofing():
    m, agent = world()
    spoofed = ip_packet(1, m.mac_of("if-p1"), BCAST, "172.16.0.12", "172.16.0.255")
    assert agent.send(spoofed).dropped
    bad_mac = ip_packet(1, "52:54:00:ee:ee:ee", BCAST, "172.16.0.11", "172.16.0.255")
    assert agent.send(bad_mac).dropped
