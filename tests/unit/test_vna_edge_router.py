"""Router ports on physical networks (vna.features.edge_router): the gateway datapath
answers and routes for the port, the others forward to it, next hops are resolved by
ARP (MAC binding), on the flow simulator."""

from __future__ import annotations

import pytest
from os_ken.lib.packet import arp, ethernet, icmp, ipv4, packet
from vna_kit import (
    SEGMENT,
    TUNNEL_PORT,
    Agent,
    ModelBuilder,
    gw_mac,
    p2v_world,
    punt_replies,
)

from vna.neighbors import NeighborTable
from vna.view import LocalBinding

EXT_MAC, UP_MAC = "02:ee:00:00:00:64", "02:ee:00:00:00:01"


@pytest.fixture
def m() -> ModelBuilder:
    return p2v_world()


def agent(m: ModelBuilder, dp: str, neighbors: dict | None = None) -> Agent:
    ports = {"if-a": 1, "if-h1": 10, "if-p1": SEGMENT} if dp == "1" else \
        {"if-b": 1, "if-h2": 10, "if-p2": SEGMENT}
    return Agent(m.snapshot(), LocalBinding(f"dp-{dp}", ports=ports, tunnel_ofport=TUNNEL_PORT,
                                            neighbors=neighbors or {}))


def ping(src_mac: str, dst_mac: str, src: str, dst: str, ttl: int = 64) -> bytes:
    frame = packet.Packet()
    frame.add_protocol(ethernet.ethernet(dst_mac, src_mac, 0x0800))
    frame.add_protocol(ipv4.ipv4(src=src, dst=dst, proto=1, ttl=ttl))
    frame.add_protocol(icmp.icmp(type_=8, data=icmp.echo(id_=1, seq=1, data=b"x" * 8)))
    frame.serialize()
    return bytes(frame.data)


def arp_frame(op: int, src_mac: str, src_ip: str, dst_mac: str, dst_ip: str) -> bytes:
    frame = packet.Packet()
    eth_dst = "ff:ff:ff:ff:ff:ff" if op == 1 else dst_mac
    frame.add_protocol(ethernet.ethernet(eth_dst, src_mac, 0x0806))
    frame.add_protocol(arp.arp(opcode=op, src_mac=src_mac, src_ip=src_ip,
                               dst_mac="00:00:00:00:00:00" if op == 1 else dst_mac,
                               dst_ip=dst_ip))
    frame.serialize()
    return bytes(frame.data)


def port_mac(m: ModelBuilder) -> str:
    return gw_mac(m, "rl-r", "nw-pub")


def learn(m: ModelBuilder, table: NeighborTable, ip: str, mac: str) -> Agent:
    """The upstream answers our request: the reply is punted, learned, and the flows
    recomputed with the binding."""
    gw = agent(m, "1")
    reply = arp_frame(2, mac, ip, port_mac(m), "172.16.0.4")
    outcome, answers = punt_replies(gw, reply, SEGMENT, neighbors=table)
    assert outcome.dropped and answers == [] and table.snapshot()[("nw-pub", ip)] == mac
    return agent(m, "1", table.snapshot())


def test_the_gateway_asks_for_an_unknown_next_hop_then_routes_to_it(m):
    table = NeighborTable()
    gw = agent(m, "1")
    out = ping(m.mac_of("if-a"), gw_mac(m, "rl-r", "nw-1"), "10.1.0.10", "192.0.2.50")
    outcome, answers = punt_replies(gw, out, 1, neighbors=table)
    assert outcome.dropped and len(answers) == 1 and answers[0].port == SEGMENT
    request = packet.Packet(answers[0].data).get_protocol(arp.arp)
    # asked from the router port, for the default route's gateway (not the destination)
    assert (request.opcode, request.src_mac, request.src_ip, request.dst_ip) == (
        1, port_mac(m), "172.16.0.4", "172.16.0.1")
    # ...once per second, however many packets miss
    assert punt_replies(gw, out, 1, neighbors=table)[1] == []
    gw = learn(m, table, "172.16.0.1", UP_MAC)
    port, sent = gw.send(punt_fields(out, 1)).only()
    assert port == SEGMENT and (sent["eth_src"], sent["eth_dst"]) == (port_mac(m), UP_MAC)
    assert sent["ip_ttl"] == 63 and sent["ipv4_dst"] == "192.0.2.50"
    assert punt_replies(gw, out, 1, neighbors=table)[1] == []  # no more packet-ins


def punt_fields(frame: bytes, in_port: int) -> dict:
    from vna_kit import frame_fields
    return frame_fields(frame, in_port)


def test_an_address_on_the_segment_is_its_own_next_hop(m):
    table = NeighborTable()
    gw = agent(m, "1")
    out = ping(m.mac_of("if-a"), gw_mac(m, "rl-r", "nw-1"), "10.1.0.10", "172.16.0.100")
    answers = punt_replies(gw, out, 1, neighbors=table)[1]
    assert packet.Packet(answers[0].data).get_protocol(arp.arp).dst_ip == "172.16.0.100"
    gw = learn(m, table, "172.16.0.100", EXT_MAC)
    port, sent = gw.send(punt_fields(out, 1)).only()
    assert port == SEGMENT and sent["eth_dst"] == EXT_MAC


def test_only_the_gateway_answers_arp_for_the_port(m):
    request = arp_frame(1, EXT_MAC, "172.16.0.100", "", "172.16.0.4")
    port, reply = agent(m, "1").send(punt_fields(request, SEGMENT)).only()
    assert port == SEGMENT and reply["arp_op"] == 2 and reply["arp_sha"] == port_mac(m)
    # dp-2 lets the request through its part of the segment like any other ARP
    assert all(p != SEGMENT for p in agent(m, "2").send(punt_fields(request, SEGMENT)).ports)


def test_the_segment_reaches_vms_through_the_gateway(m):
    gw = agent(m, "1")
    to_a = ping(EXT_MAC, port_mac(m), "172.16.0.100", "10.1.0.10")
    port, sent = gw.send(punt_fields(to_a, SEGMENT)).only()
    assert port == 1 and sent["eth_dst"] == m.mac_of("if-a") and sent["ip_ttl"] == 63
    to_b = ping(EXT_MAC, port_mac(m), "172.16.0.100", "10.2.0.20")
    port, sent = gw.send(punt_fields(to_b, SEGMENT)).only()  # b is on dp-2: the tunnel
    assert port == TUNNEL_PORT and sent["tun_ipv4_dst"] == "192.168.0.2"
    assert sent["eth_dst"] == m.mac_of("if-b") and sent["eth_src"] == gw_mac(m, "rl-r", "nw-2")


def test_other_datapaths_forward_to_the_gateway_which_routes(m):
    table = NeighborTable()
    out = ping(m.mac_of("if-b"), gw_mac(m, "rl-r", "nw-2"), "10.2.0.20", "192.0.2.50")
    port, sent = agent(m, "2").send(punt_fields(out, 1)).only()
    segment = m.model["networks"]["nw-2"]["segment_id"]
    assert port == TUNNEL_PORT and sent["tun_ipv4_dst"] == "192.168.0.1"
    assert sent["tunnel_id"] == segment and sent["ip_ttl"] == 64  # not routed yet
    gw = learn(m, table, "172.16.0.1", UP_MAC)
    arrived = dict(punt_fields(out, TUNNEL_PORT), tunnel_id=segment)
    port, routed = gw.send(arrived).only()
    assert port == SEGMENT and routed["eth_dst"] == UP_MAC and routed["ip_ttl"] == 63
    assert routed["eth_src"] == port_mac(m)


def test_mac2mac_forwarding_restores_the_router_mac_on_the_gateway(m):
    for dp in ("1", "2"):
        m.dpn(f"dp-{dp}", "nw-2", f"if-h{dp}")
    out = ping(m.mac_of("if-b"), gw_mac(m, "rl-r", "nw-2"), "10.2.0.20", "172.16.0.100")
    sender = Agent(m.snapshot(), LocalBinding("dp-2", "mac2mac",
                                              {"if-b": 1, "if-h2": 10, "if-p2": SEGMENT}))
    port, wire = sender.send(punt_fields(out, 1)).only()
    assert port == 10 and wire["eth_dst"] == m.model["datapath_networks"][
        "dpn-dp-1-nw-2"]["broadcast_mac_address"]
    gw = Agent(m.snapshot(), LocalBinding("dp-1", "mac2mac",
                                          {"if-a": 1, "if-h1": 10, "if-p1": SEGMENT},
                                          neighbors={("nw-pub", "172.16.0.100"): EXT_MAC}))
    port, routed = gw.send(dict(wire, in_port=10)).only()
    assert port == SEGMENT and routed["eth_dst"] == EXT_MAC and routed["ip_ttl"] == 63


def test_bindings_refresh_and_expire():
    now = [0.0]
    table = NeighborTable(clock=lambda: now[0])
    assert table.learn("nw-pub", "172.16.0.1", UP_MAC)
    assert not table.learn("nw-pub", "172.16.0.1", UP_MAC)  # same MAC: nothing to redo
    now[0] = 31.0
    assert table.tick() == ([("nw-pub", "172.16.0.1")], False)
    assert table.tick() == ([], False)  # asked already
    table.learn("nw-pub", "172.16.0.1", UP_MAC)  # answered: confirmed again
    now[0] = 200.0
    assert table.tick() == ([], True) and table.snapshot() == {}
