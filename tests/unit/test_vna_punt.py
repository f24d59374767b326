"""The packet-in path without a switch: frames through the desired flows, punts
dispatched by cookie kind to a feature's handler, reply frames checked.

The echo feature (echo_feature.py) is test-only; the production punt (fragments of ICMP
to a gateway) has its own tests in test_vna_gateway_fragments.py.
"""

from __future__ import annotations

import logging

import pytest
import vna_kit as kit
from echo_feature import ECHO, ECHO_PORT
from os_ken.lib.packet import ethernet, ipv4, packet, udp

from vna.actions import IN_PORT, Controller, Meter
from vna.feature import Feature
from vna.features import BY_KIND, FEATURES
from vna.flows import KIND_SHIFT
from vna.meters import ICMP_ERROR_METER_ID
from vna.pipeline import ETH_IPV4, KIND_MISS, Table
from vna.punt import PacketIn, PacketOut, PuntStats, dispatch, punt_actions
from vna.view import View

VM_PORT = 3


def udp_frame(src_mac: str, dst_mac: str, src: str, dst: str, dport: int,
              payload: bytes = b"hello") -> bytes:
    frame = packet.Packet()
    frame.add_protocol(ethernet.ethernet(dst=dst_mac, src=src_mac, ethertype=ETH_IPV4))
    frame.add_protocol(ipv4.ipv4(src=src, dst=dst, proto=17, ttl=64))
    frame.add_protocol(udp.udp(src_port=5555, dst_port=dport))
    frame.add_protocol(payload)
    frame.serialize()
    return bytes(frame.data)


@pytest.fixture
def world() -> tuple[kit.ModelBuilder, kit.Agent]:
    m = kit.routed_world()
    return m, kit.agent_on(m, "1", {"if-a": VM_PORT}, features=(*FEATURES, ECHO))


def test_a_punted_frame_is_answered_through_the_ports_meter(world) -> None:
    m, agent = world
    a, gw = m.mac_of("if-a"), kit.gw_mac(m, "rl-r", "nw-1")
    stats = PuntStats()
    frame = udp_frame(a, gw, "10.1.0.10", "10.1.0.1", ECHO_PORT, b"ping me")
    outcome, replies = kit.punt_replies(agent, frame, VM_PORT, stats)
    assert outcome.meters == [VM_PORT]  # the vif's meter, before the controller
    assert outcome.outputs == []  # punted, not forwarded
    assert [r.port for r in replies] == [VM_PORT]  # IN_PORT resolved
    reply = packet.Packet(replies[0].data)
    eth, ip, dgram = (reply.get_protocol(p) for p in (ethernet.ethernet, ipv4.ipv4, udp.udp))
    assert (eth.src, eth.dst, ip.src, ip.dst) == (gw, a, "10.1.0.1", "10.1.0.10")
    assert (dgram.src_port, dgram.dst_port) == (ECHO_PORT, 5555)
    assert reply.protocols[-1] == b"ping me"
    assert stats.handled == {"echo": 1} and stats.sent == 1 and not stats.dropped


def test_other_traffic_is_not_punted(world) -> None:
    m, agent = world
    a, b = m.mac_of("if-a"), kit.gw_mac(m, "rl-r", "nw-1")
    outcome, replies = kit.punt_replies(agent, udp_frame(a, b, "10.1.0.10", "10.2.0.20", 8),
                                        VM_PORT)
    assert outcome.punts == [] and replies == []
    assert outcome.ports == [kit.TUNNEL_PORT]  # routed toward dp-2 as before


def test_production_flows_punt_only_through_a_meter() -> None:
    """The rule every punting flow keeps: a meter before Controller - the meter of its
    in_port (the gateway's punt of fragments, one per local vif and router address), or
    the datapath-wide ICMP error meter (the router's unreachable punts, per router port
    and routed network, which match no in_port)."""
    m = kit.routed_world()
    punting = unreachable = 0
    for dp, ports in (("1", {"if-a": 1}), ("2", {"if-b": 2})):
        for flow in kit.agent_on(m, dp, ports).desired.flows().values():
            if any(isinstance(x, Controller) for x in flow.actions):
                if "in_port" in flow.match_dict():
                    assert flow.actions[:2] == punt_actions(flow.match_dict()["in_port"]), flow
                    punting += 1
                else:
                    assert flow.actions == (Meter(ICMP_ERROR_METER_ID), Controller()), flow
                    unreachable += 1
    # per datapath: 2 router ports' catch-alls and 2 routed networks' ARP_RESOLVE ones
    assert (punting, unreachable) == (4, 8)


def test_punt_actions_are_the_ports_meter_then_the_controller() -> None:
    assert punt_actions(5) == (Meter(5), Controller())
    with pytest.raises(ValueError):
        punt_actions(0)


def _packet_in(kind: int, data: bytes = b"\x00" * 60) -> PacketIn:
    return PacketIn(cookie=kind << KIND_SHIFT | 0x1234, table_id=Table.PUNT, reason="action",
                    in_port=4, data=data)


def test_unknown_kind_is_dropped_counted_and_logged_once(caplog) -> None:
    stats = PuntStats()
    view = kit.agent_on(kit.routed_world(), "1", {}).view()
    assert 0xEE not in BY_KIND
    with caplog.at_level(logging.WARNING, logger="vna.punt"):
        for _ in range(3):
            assert dispatch(view, _packet_in(0xEE), stats=stats) == []
    assert stats.dropped == {"unknown_kind": 3} and not stats.handled
    assert len([r for r in caplog.records if "unknown kind 0xee" in r.getMessage()]) == 1


def test_a_feature_without_handler_drops(caplog) -> None:
    stats = PuntStats()
    view = kit.agent_on(kit.routed_world(), "1", {}).view()
    assert BY_KIND[KIND_MISS].packet_in is None
    assert dispatch(view, _packet_in(KIND_MISS), stats=stats) == []
    assert stats.dropped == {"no_handler": 1}


def test_a_failing_handler_drops_and_the_next_packet_is_still_handled() -> None:
    stats = PuntStats()
    view = kit.agent_on(kit.routed_world(), "1", {}).view()
    calls = []

    def flaky(view: View, packet_in: PacketIn) -> list[PacketOut]:
        calls.append(packet_in)
        if len(calls) == 1:
            raise ValueError("truncated frame")
        return [PacketOut(9, packet_in.data), PacketOut(IN_PORT, b"x")]

    feature = Feature("flaky", frozenset({0xF8}), {}, packet_in=flaky)
    assert dispatch(view, _packet_in(0xF8), {0xF8: feature}, stats) == []
    out = dispatch(view, _packet_in(0xF8), {0xF8: feature}, stats)
    assert out == [PacketOut(9, b"\x00" * 60), PacketOut(4, b"x")]
    assert stats.dropped == {"handler_error": 1} and stats.handled == {"flaky": 1}
    assert stats.sent == 2
