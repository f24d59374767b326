"""ICMP errors from the distributed router (vna.icmp_errors, vna.features.routing):
time exceeded from the router whose dec_ttl failed, at its address on the network the
packet entered it by - so traceroute shows the logical hops.

Frames are real (os_ken.lib.packet), run through the desired flows; an expired dec_ttl
becomes an invalid-TTL packet-in carrying the frame as rewritten so far, as OVS sends it
(vna_kit.punt_replies).
"""

from __future__ import annotations

import pytest
import vna_kit as kit
from os_ken.lib.packet import ethernet, icmp, ipv4, packet, packet_utils, udp

from vna import icmp_errors
from vna.actions import Controller, DecTtl, Meter, SetField
from vna.features.routing import KIND_ROUTE
from vna.flows import cookie_parts
from vna.meters import ICMP_ERROR_METER_ID
from vna.pipeline import Table

A_PORT = 1


@pytest.fixture(autouse=True)
def fresh_limiter(monkeypatch: pytest.MonkeyPatch) -> icmp_errors.RateLimiter:
    clock = [0.0]
    limiter = icmp_errors.RateLimiter(rate=10, burst=5, clock=lambda: clock[0])
    limiter.now = clock  # type: ignore[attr-defined]
    monkeypatch.setattr(icmp_errors, "LIMITER", limiter)
    monkeypatch.setattr(icmp_errors, "STATS", icmp_errors.IcmpErrorStats())
    return limiter


@pytest.fixture(params=["tunnel", "mac2mac"])
def chain(request: pytest.FixtureRequest) -> tuple[kit.ModelBuilder, kit.Agent]:
    """nw1 - r1 - nw2 - r2 - nw3; vif a on dp-1 (nw1), c on dp-2 (nw3)."""
    m = kit.two_hosts()
    nw1, nw2, nw3 = (m.network(str(i), f"10.{i}.0.0/24") for i in (1, 2, 3))
    m.vif("a", "dp-1", nw1, "10.1.0.10")
    m.vif("c", "dp-2", nw3, "10.3.0.30")
    r1 = m.router("r1", [(nw1, "10.1.0.1"), (nw2, "10.2.0.1")])
    r2 = m.router("r2", [(nw2, "10.2.0.2"), (nw3, "10.3.0.1")])
    m.route(r1, m.router_port(r1, nw2), nw2, "10.3.0.0/24")
    m.route(r2, m.router_port(r2, nw2), nw2, "10.1.0.0/24")
    for dp, host in (("dp-1", "if-h1"), ("dp-2", "if-h2")):
        for network in (nw1, nw2, nw3):
            m.dpn(dp, network, host)
    return m, kit.agent_on(m, "1", {"if-a": A_PORT, "if-h1": 50}, transport=request.param)


def probe(m: kit.ModelBuilder, dst: str, ttl: int, proto: str = "udp") -> bytes:
    frame = packet.Packet()
    frame.add_protocol(ethernet.ethernet(dst=kit.gw_mac(m, "rl-r1", "nw-1"),
                                         src=m.mac_of("if-a"), ethertype=0x0800))
    if proto == "udp":
        frame.add_protocol(ipv4.ipv4(src="10.1.0.10", dst=dst, proto=17, ttl=ttl,
                                     identification=0x1234))
        frame.add_protocol(udp.udp(src_port=40000, dst_port=33434 + ttl))
        frame.add_protocol(b"x" * 32)
    else:
        frame.add_protocol(ipv4.ipv4(src="10.1.0.10", dst=dst, proto=1, ttl=ttl,
                                     identification=0x1234))
        frame.add_protocol(icmp.icmp(type_=icmp.ICMP_ECHO_REQUEST, code=0, csum=0,
                                     data=icmp.echo(id_=7, seq=ttl, data=b"y" * 1000)))
    frame.serialize()
    return bytes(frame.data)


def parse_error(frame: bytes) -> tuple[ethernet.ethernet, ipv4.ipv4, icmp.icmp, bytes]:
    eth, _, rest = ethernet.ethernet.parser(frame)
    ip, _, payload = ipv4.ipv4.parser(rest)
    assert packet_utils.checksum(rest[:20]) == 0
    assert packet_utils.checksum(payload) == 0
    msg, _, _ = icmp.icmp.parser(payload)
    return eth, ip, msg, bytes(payload[8:])


def test_route_entries_dec_ttl_before_each_routers_mac(chain):
    m, agent = chain
    flows = [f for f in agent.desired.flows().values()
             if f.table == Table.ROUTE and cookie_parts(f.cookie)[0] == KIND_ROUTE
             and f.goto is not None and f.match_dict().get("ipv4_dst", (None,))[0] == "10.3.0.0"]
    assert flows, "a ROUTE entry toward nw3"
    assert flows[0].actions == (DecTtl(), SetField("eth_src", kit.gw_mac(m, "rl-r1", "nw-2")),
                                DecTtl(), SetField("eth_src", kit.gw_mac(m, "rl-r2", "nw-3")))


@pytest.mark.parametrize("proto", ["udp", "icmp"])
@pytest.mark.parametrize(("ttl", "hop"), [(1, "10.1.0.1"), (2, "10.2.0.2")])
def test_time_exceeded_from_the_expiring_routers_address_on_its_ingress_network(
        chain, ttl, hop, proto):
    m, agent = chain
    frame = probe(m, "10.3.0.30", ttl, proto)
    outcome, replies = kit.punt_replies(agent, frame, A_PORT)
    assert outcome.ttl_expired and not outcome.outputs
    [reply] = replies
    assert reply.port == A_PORT
    eth, ip, msg, quoted = parse_error(reply.data)
    assert (eth.src, eth.dst) == (kit.gw_mac(m, "rl-r1", "nw-1"), m.mac_of("if-a"))
    assert (ip.src, ip.dst, ip.proto) == (hop, "10.1.0.10", 1)
    assert (msg.type, msg.code) == (11, 0)
    # the offending datagram as the expiring router got it: header (TTL 1) + all of it
    inner, _, _ = ipv4.ipv4.parser(quoted)
    assert (inner.src, inner.dst, inner.ttl, inner.identification) == (
        "10.1.0.10", "10.3.0.30", 1, 0x1234)
    assert quoted[20:] == frame[14 + 20:][: len(quoted) - 20]
    assert len(reply.data) - 14 <= icmp_errors.MAX_ERROR_BYTES
    assert icmp_errors.STATS.sent["time_exceeded"] == 1


def test_enough_ttl_is_delivered_without_controller(chain):
    m, agent = chain
    outcome, replies = kit.punt_replies(agent, probe(m, "10.3.0.30", 3), A_PORT)
    assert not outcome.ttl_expired and outcome.outputs and not replies


def test_one_router_path_expires_at_the_gateway(chain):
    m, agent = chain
    _, [reply] = kit.punt_replies(agent, probe(m, "10.2.0.99", 1), A_PORT)
    assert parse_error(reply.data)[1].src == "10.1.0.1"


def test_no_error_about_an_icmp_error_or_a_later_fragment(chain):
    m, agent = chain
    frame = packet.Packet()
    frame.add_protocol(ethernet.ethernet(dst=kit.gw_mac(m, "rl-r1", "nw-1"),
                                         src=m.mac_of("if-a"), ethertype=0x0800))
    frame.add_protocol(ipv4.ipv4(src="10.1.0.10", dst="10.3.0.30", proto=1, ttl=1))
    frame.add_protocol(icmp.icmp(type_=3, code=3, csum=0, data=icmp.dest_unreach(data=b"z" * 28)))
    frame.serialize()
    outcome, replies = kit.punt_replies(agent, bytes(frame.data), A_PORT)
    assert outcome.ttl_expired and replies == []


def test_errors_are_rate_limited_per_port(chain, fresh_limiter):
    m, agent = chain
    frame = probe(m, "10.3.0.30", 1)
    answered = sum(len(kit.punt_replies(agent, frame, A_PORT)[1]) for _ in range(20))
    assert answered == 5 and icmp_errors.STATS.limited == 15
    fresh_limiter.now[0] += 0.5  # type: ignore[attr-defined]
    answered = sum(len(kit.punt_replies(agent, frame, A_PORT)[1]) for _ in range(20))
    assert answered == 5  # 10/s for 0.5 s, capped at the burst


def test_set_async_enables_invalid_ttl_packet_ins():
    from test_vna_actions import FakeDatapath

    from vna.switch import async_config

    dp = FakeDatapath()
    msg = async_config(dp)
    o = dp.ofproto
    assert msg.packet_in_mask[0] == 1 << o.OFPR_ACTION | 1 << o.OFPR_INVALID_TTL
    assert not msg.packet_in_mask[0] & 1 << o.OFPR_NO_MATCH


# ------------------------------------------------------------------ unreachable

@pytest.mark.parametrize(("dst", "src", "code"), [
    ("10.9.0.5", "10.1.0.1", 0),  # r1 has no route: network unreachable from its gateway
    ("10.2.0.99", "10.1.0.1", 1),  # nobody holds it on nw2 (r1's connected network)
    ("10.3.0.99", "10.2.0.2", 1),  # ... on nw3: from r2, at its address on nw2
])
def test_destination_unreachable_from_the_router_on_the_network_it_entered_by(
        chain, dst, src, code):
    m, agent = chain
    frame = probe(m, dst, 64)
    outcome, [reply] = kit.punt_replies(agent, frame, A_PORT)
    assert outcome.meters == [ICMP_ERROR_METER_ID] and not outcome.outputs
    assert reply.port == A_PORT
    eth, ip, msg, quoted = parse_error(reply.data)
    assert (eth.src, eth.dst) == (kit.gw_mac(m, "rl-r1", "nw-1"), m.mac_of("if-a"))
    assert (ip.src, ip.dst, msg.type, msg.code) == (src, "10.1.0.10", 3, code)
    inner, _, _ = ipv4.ipv4.parser(quoted)
    assert (inner.src, inner.dst, inner.identification) == ("10.1.0.10", dst, 0x1234)
    name = "net_unreachable" if code == 0 else "host_unreachable"
    assert icmp_errors.STATS.sent == {name: 1}


def test_unreachable_punts_are_bounded_flows_through_the_datapath_wide_meter(chain):
    m, agent = chain
    flows = [f for f in agent.desired.flows().values() if Controller() in f.actions
             and "in_port" not in f.match_dict()]
    assert all(f.actions == (Meter(ICMP_ERROR_METER_ID), Controller()) for f in flows)
    route = [f.match_dict() for f in flows if f.table == Table.ROUTE]
    # one catch-all (no ipv4_dst: 0.0.0.0/0) per router port with ingress, nothing per vif
    assert len(route) == 4 and not any("ipv4_dst" in match for match in route)
    resolve = [f for f in flows if f.table == Table.ARP_RESOLVE]
    assert len(resolve) == 3  # one per routed network


def test_a_known_host_is_delivered_not_punted(chain):
    m, agent = chain
    outcome, replies = kit.punt_replies(agent, probe(m, "10.3.0.30", 64), A_PORT)
    assert outcome.outputs and outcome.punts == [] and replies == []
