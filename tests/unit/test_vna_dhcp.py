"""DHCP answered by the vna from the model: real DHCP frames built with os_ken.lib.packet
run through the desired flows (PUNT) and the dhcp feature's handler by
vna_kit.punt_replies, on both transports.
"""

from __future__ import annotations

import ipaddress
import struct

import pytest
import vna_kit as kit
from os_ken.lib import addrconv
from os_ken.lib.packet import dhcp, ethernet, ipv4, packet, udp

from vna.features.dhcp import (
    ACK,
    DECLINE,
    DISCOVER,
    INFORM,
    KIND_DHCP,
    NAK,
    OFFER,
    RELEASE,
    REQUEST,
    classless_routes,
)
from vna.pipeline import Table
from vna.punt import PacketOut, PuntStats

VM_PORT, B_PORT = 3, 4
A_IP, SERVER_IP, DNS_IP, GW_IP = "10.1.0.10", "10.1.0.2", "10.1.0.3", "10.1.0.1"
XID = 0x1234ABCD


def world(transport: str = "tunnel", router: bool = True, dns: bool = True,
          service: bool = True) -> tuple[kit.ModelBuilder, kit.Agent]:
    """routed_world (vif a 10.1.0.10 on dp-1, router 10.1.0.1 / 10.2.0.1) plus a dhcp
    service 10.1.0.2 and a dns service 10.1.0.3 on nw-1."""
    m = kit.two_hosts()
    nw1, nw2 = m.network("1", "10.1.0.0/24"), m.network("2", "10.2.0.0/24")
    m.model["networks"][nw1]["domain_name"] = "vnet.test"
    m.vif("a", "dp-1", nw1, A_IP)
    m.vif("b", "dp-1", nw2, "10.2.0.20")
    if router:
        m.router("r", [(nw1, GW_IP), (nw2, "10.2.0.1")])
    if service:
        m.service("dhcp1", "dhcp", nw1, SERVER_IP)
    if dns:
        m.service("dns1", "dns", nw1, DNS_IP)
    return m, agent(m, transport)


def agent(m: kit.ModelBuilder, transport: str = "tunnel") -> kit.Agent:
    return kit.agent_on(m, "1", {"if-a": VM_PORT, "if-b": B_PORT}, transport=transport)


def request(m: kit.ModelBuilder, message_type: int, *, mac: str | None = None,
            src: str = "0.0.0.0", dst: str = "255.255.255.255", eth_dst: str | None = None,
            ciaddr: str = "0.0.0.0", flags: int = 0, options: dict[int, bytes] | None = None,
            chaddr: str | None = None) -> bytes:
    mac = mac or m.mac_of("if-a")
    opts = [dhcp.option(tag=dhcp.DHCP_MESSAGE_TYPE_OPT, value=bytes([message_type]))]
    opts += [dhcp.option(tag=t, value=v) for t, v in (options or {}).items()]
    frame = packet.Packet()
    frame.add_protocol(ethernet.ethernet(dst=eth_dst or "ff:ff:ff:ff:ff:ff", src=mac,
                                         ethertype=0x0800))
    frame.add_protocol(ipv4.ipv4(src=src, dst=dst, proto=17, ttl=64))
    frame.add_protocol(udp.udp(src_port=68, dst_port=67))
    frame.add_protocol(dhcp.dhcp(op=dhcp.DHCP_BOOT_REQUEST, chaddr=chaddr or mac, xid=XID,
                                 flags=flags, ciaddr=ciaddr,
                                 options=dhcp.options(option_list=opts)))
    frame.serialize()
    return bytes(frame.data)


def ip(a: str) -> bytes:
    return addrconv.ipv4.text_to_bin(a)


class Reply:
    def __init__(self, out: PacketOut) -> None:
        self.port = out.port
        self.data = out.data
        pkt = packet.Packet(out.data)
        self.eth = pkt.get_protocol(ethernet.ethernet)
        self.ip = pkt.get_protocol(ipv4.ipv4)
        self.udp = pkt.get_protocol(udp.udp)
        self.dhcp = pkt.get_protocol(dhcp.dhcp)
        self.options = {o.tag: bytes(o.value) for o in self.dhcp.options.option_list
                        if isinstance(o, dhcp.option)}

    @property
    def type(self) -> int:
        return self.options[dhcp.DHCP_MESSAGE_TYPE_OPT][0]


def ask(agent: kit.Agent, frame: bytes, port: int = VM_PORT,
        stats: PuntStats | None = None) -> list[Reply]:
    outcome, replies = kit.punt_replies(agent, frame, port, stats)
    return [Reply(r) for r in replies]


def only(replies: list[Reply]) -> Reply:
    assert len(replies) == 1, replies
    return replies[0]


# ------------------------------------------------------------------ flows

@pytest.mark.parametrize("transport", ["tunnel", "mac2mac"])
def test_a_vif_on_a_network_with_a_dhcp_service_punts_its_dhcp_through_its_meter(
        transport: str) -> None:
    m, a = world(transport)
    outcome = a.send(kit.frame_fields(request(m, DISCOVER), VM_PORT))
    assert outcome.meters == [VM_PORT] and len(outcome.punts) == 1 and outcome.outputs == []
    flow = outcome.trace[-1]
    assert (flow.table, flow.kind) == (Table.PUNT, KIND_DHCP)
    dhcp_flows = [f for f in a.desired.flows().values() if f.kind == KIND_DHCP]
    assert len(dhcp_flows) == 1  # vif b is on nw-2: no dhcp service there
    # the punt happens before ANTISPOOF: a DISCOVER from 0.0.0.0 would be dropped there
    assert [t.table for t in outcome.trace] == [Table.CLASSIFY, Table.PUNT]


def test_no_dhcp_service_no_punt_and_no_answer() -> None:
    m, a = world(service=False)
    outcome, replies = kit.punt_replies(a, request(m, DISCOVER), VM_PORT)
    assert outcome.punts == [] and replies == []
    assert not [f for f in a.desired.flows().values() if f.kind == KIND_DHCP]
    # nw-2's vif: no service on its network either
    outcome, replies = kit.punt_replies(
        a, request(m, DISCOVER, mac=m.mac_of("if-b")), B_PORT)
    assert outcome.punts == [] and replies == []


def test_other_udp_and_a_foreign_mac_are_not_punted() -> None:
    m, a = world()
    fields = kit.frame_fields(request(m, DISCOVER), VM_PORT)
    assert a.send(dict(fields, udp_dst=68)).punts == []
    assert a.send(dict(fields, eth_src="52:54:00:99:99:99")).punts == []  # CLASSIFY drops


# ------------------------------------------------------------------ the exchange

@pytest.mark.parametrize("transport,mtu", [("tunnel", 1450), ("mac2mac", 1500)])
def test_discover_gets_an_offer_of_the_lease_with_every_option(transport: str, mtu: int) -> None:
    m, a = world(transport)
    stats = PuntStats()
    r = only(ask(a, request(m, DISCOVER), stats=stats))
    assert stats.handled == {"dhcp": 1}
    server_mac = m.mac_of("if-dhcp1")
    assert r.port == VM_PORT
    assert (r.eth.src, r.eth.dst) == (server_mac, m.mac_of("if-a"))
    assert (r.ip.src, r.ip.dst) == (SERVER_IP, A_IP)  # unicast: no broadcast flag
    assert (r.udp.src_port, r.udp.dst_port) == (67, 68)
    assert r.type == OFFER
    assert (r.dhcp.op, r.dhcp.xid, r.dhcp.chaddr) == (dhcp.DHCP_BOOT_REPLY, XID, m.mac_of("if-a"))
    assert r.dhcp.yiaddr == A_IP
    o = r.options
    assert o[1] == ip("255.255.255.0")
    assert o[3] == ip(GW_IP)
    assert o[6] == ip(DNS_IP)
    assert o[15] == b"vnet.test"
    assert struct.unpack("!H", o[26]) == (mtu,)
    assert struct.unpack("!I", o[51]) == (86400,)
    assert struct.unpack("!I", o[58]) == (43200,)
    assert struct.unpack("!I", o[59]) == (75600,)
    assert o[54] == ip(SERVER_IP)
    # RFC 3442: width 0, no destination octets, the router
    assert o[121] == bytes([0]) + ip(GW_IP)
    # IPv4 and UDP checksums valid, BOOTP minimum size
    assert len(r.dhcp.serialize()) >= 300
    reparsed = packet.Packet(r.data)
    assert reparsed.get_protocol(dhcp.dhcp).yiaddr == A_IP


def test_the_broadcast_flag_gets_a_broadcast_reply() -> None:
    m, a = world()
    r = only(ask(a, request(m, DISCOVER, flags=0x8000)))
    assert r.ip.dst == "255.255.255.255" and r.eth.dst == m.mac_of("if-a")
    assert r.dhcp.flags == 0x8000


def test_request_while_selecting_gets_an_ack() -> None:
    m, a = world()
    r = only(ask(a, request(m, REQUEST, options={50: ip(A_IP), 54: ip(SERVER_IP)})))
    assert r.type == ACK and r.dhcp.yiaddr == A_IP
    assert r.options[54] == ip(SERVER_IP) and 51 in r.options and 121 in r.options


def test_request_for_another_servers_offer_is_not_answered() -> None:
    m, a = world()
    assert ask(a, request(m, REQUEST,
                          options={50: ip(A_IP), 54: ip("10.1.0.99")})) == []


def test_init_reboot_for_the_lease_is_acked_and_for_another_address_nakked() -> None:
    m, a = world()
    r = only(ask(a, request(m, REQUEST, options={50: ip(A_IP)})))
    assert r.type == ACK
    r = only(ask(a, request(m, REQUEST, options={50: ip("10.1.0.77")})))
    assert r.type == NAK
    assert r.dhcp.yiaddr == "0.0.0.0" and r.ip.dst == "255.255.255.255"
    assert set(r.options) == {53, 54}


def test_unicast_renewal_to_the_server_is_acked_to_the_client_address() -> None:
    m, a = world()
    frame = request(m, REQUEST, src=A_IP, dst=SERVER_IP, ciaddr=A_IP,
                    eth_dst=m.mac_of("if-dhcp1"))
    r = only(ask(a, frame))
    assert r.type == ACK and r.dhcp.yiaddr == A_IP and r.dhcp.ciaddr == A_IP
    assert (r.ip.dst, r.eth.dst) == (A_IP, m.mac_of("if-a"))


def test_rebinding_broadcast_is_acked() -> None:
    m, a = world()
    r = only(ask(a, request(m, REQUEST, src=A_IP, ciaddr=A_IP)))
    assert r.type == ACK and r.ip.dst == A_IP


def test_renewal_of_an_address_that_is_no_longer_leased_is_nakked() -> None:
    m, a = world()
    r = only(ask(a, request(m, REQUEST, src="10.1.0.50", ciaddr="10.1.0.50")))
    assert r.type == NAK


def test_inform_gets_an_ack_without_address_or_lease_times() -> None:
    m, a = world()
    r = only(ask(a, request(m, INFORM, src=A_IP, ciaddr=A_IP)))
    assert r.type == ACK and r.dhcp.yiaddr == "0.0.0.0"
    assert r.ip.dst == A_IP
    assert not {51, 58, 59} & set(r.options)
    assert {1, 3, 6, 15, 26, 54, 121} <= set(r.options)


@pytest.mark.parametrize("kind", [RELEASE, DECLINE])
def test_release_and_decline_are_consumed_without_answer(kind: int) -> None:
    m, a = world()
    stats = PuntStats()
    assert ask(a, request(m, kind, src=A_IP, ciaddr=A_IP, options={54: ip(SERVER_IP)}),
               stats=stats) == []
    assert stats.handled == {"dhcp": 1} and stats.dropped == {}
    # the lease is still offered
    assert only(ask(a, request(m, DISCOVER))).dhcp.yiaddr == A_IP


def test_a_chaddr_other_than_the_sender_is_not_answered() -> None:
    m, a = world()
    assert ask(a, request(m, DISCOVER, chaddr="52:54:00:99:99:99")) == []


# ------------------------------------------------------------------ options

def test_without_router_no_option_3_nor_121_and_without_dns_no_option_6() -> None:
    m, a = world(router=False, dns=False)
    r = only(ask(a, request(m, DISCOVER)))
    assert not {3, 6, 121} & set(r.options)
    assert {1, 15, 26, 51, 54} <= set(r.options)


def test_network_mtu_overrides_the_transport_default() -> None:
    m, _ = world("mac2mac")
    m.model["networks"]["nw-1"]["mtu"] = 9000
    r = only(ask(agent(m, "mac2mac"), request(m, DISCOVER)))
    assert struct.unpack("!H", r.options[26]) == (9000,)


def test_without_domain_name_no_option_15() -> None:
    m, _ = world()
    m.model["networks"]["nw-1"]["domain_name"] = None
    assert 15 not in only(ask(agent(m), request(m, DISCOVER))).options


def test_a_second_router_adds_its_prefixes_to_option_121() -> None:
    m, _ = world()
    nw3 = m.network("3", "10.3.0.0/24")
    m.router("s", [("nw-1", "10.1.0.254"), (nw3, "10.3.0.1")])
    r = only(ask(agent(m), request(m, DISCOVER)))
    assert r.options[3] == ip(GW_IP)
    routes = [(ipaddress.IPv4Network("0.0.0.0/0"), GW_IP),
              (ipaddress.IPv4Network("10.3.0.0/24"), "10.1.0.254")]
    assert r.options[121] == classless_routes(tuple(routes))
    assert r.options[121] == (bytes([0]) + ip(GW_IP)
                              + bytes([24, 10, 3, 0]) + ip("10.1.0.254"))


def test_rfc3442_encoding_examples() -> None:
    # RFC 3442 section 3 table: significant octets only
    def enc(cidr: str, gw: str) -> bytes:
        return classless_routes(((ipaddress.IPv4Network(cidr), gw),))
    assert enc("0.0.0.0/0", "10.0.0.1") == bytes([0, 10, 0, 0, 1])
    assert enc("10.0.0.0/8", "10.0.0.1") == bytes([8, 10, 10, 0, 0, 1])
    assert enc("10.17.0.0/16", "10.0.0.1") == bytes([16, 10, 17, 10, 0, 0, 1])
    assert enc("10.27.129.0/24", "10.0.0.1") == bytes([24, 10, 27, 129, 10, 0, 0, 1])
    assert enc("10.229.0.128/25", "10.0.0.1") == bytes([25, 10, 229, 0, 128, 10, 0, 0, 1])
    assert enc("10.198.122.47/32", "10.0.0.1") == bytes([32, 10, 198, 122, 47, 10, 0, 0, 1])


# ------------------------------------------------------------------ model changes

def test_a_service_added_later_and_removed_again() -> None:
    m, a = world(service=False)
    m.service("dhcp1", "dhcp", "nw-1", SERVER_IP)
    a.sync(m.snapshot())
    assert a.desired.flows() == a.full()
    assert only(ask(a, request(m, DISCOVER))).type == OFFER
    m.delete("network_services", "ns-dhcp-dhcp1")
    a.sync(m.snapshot())
    assert a.desired.flows() == a.full()
    outcome, replies = kit.punt_replies(a, request(m, DISCOVER), VM_PORT)
    assert outcome.punts == [] and replies == []


def test_a_dns_service_is_not_a_dhcp_service() -> None:
    m, a = world(service=False, dns=True)
    assert not [f for f in a.desired.flows().values() if f.kind == KIND_DHCP]


def test_a_vif_whose_lease_is_elsewhere_gets_no_offer() -> None:
    """The service is on nw-2 only: vif a (leasing on nw-1) has no flow, no answer."""
    m, _ = world(service=False)
    m.service("dhcp2", "dhcp", "nw-2", "10.2.0.2")
    a = agent(m)
    outcome, replies = kit.punt_replies(a, request(m, DISCOVER), VM_PORT)
    assert outcome.punts == [] and replies == []
    r = only(ask(a, request(m, DISCOVER, mac=m.mac_of("if-b")), port=B_PORT))
    assert r.dhcp.yiaddr == "10.2.0.20" and r.options[3] == ip("10.2.0.1")
