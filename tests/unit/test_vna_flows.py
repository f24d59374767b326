"""Flow values, cookies and their os-ken messages."""

from __future__ import annotations

import pytest
from os_ken.ofproto import ofproto_v1_3, ofproto_v1_3_parser
from vna_kit import TUNNEL_PORT, Agent, ModelBuilder

from vna.actions import IN_PORT, DecTtl, Move, Output, SetField
from vna.features.arp import KIND_IFACE as ARP
from vna.features.l2 import KIND_IFACE as L2
from vna.flows import Flow, cookie_parts, ipv4_prefix_value, make_match
from vna.ofmsg import delete_by_cookie, to_flow_mod
from vna.pipeline import KIND_MISS
from vna.view import LocalBinding


class FakeDatapath:
    ofproto = ofproto_v1_3
    ofproto_parser = ofproto_v1_3_parser
    id = 1


def sample() -> Flow:
    return Flow(
        20,
        100,
        make_match(metadata=(7, 0xFFFFFFFF), eth_type=0x0806, arp_op=1, arp_tpa="10.0.0.1"),
        (
            Move("eth_src", "eth_dst", 48),
            SetField("eth_src", "02:00:00:00:00:01"),
            DecTtl(),
            Output(IN_PORT),
            SetField("tun_ipv4_dst", "192.0.2.1"),
        ),
        goto=30,
        metadata=(9, 0xFFFFFFFF),
        kind=ARP,
        obj_id=0x123456,
    )


def test_match_order_does_not_matter_and_cookie_encodes_owner():
    a = Flow(0, 1, make_match(in_port=1, eth_src="aa:bb:cc:dd:ee:ff"), kind=L2, obj_id=5)
    b = Flow(0, 1, (("in_port", 1), ("eth_src", "aa:bb:cc:dd:ee:ff")), kind=L2, obj_id=5)
    assert a == b and hash(a) == hash(b) and a.cookie == b.cookie
    kind, obj, _crc = cookie_parts(a.cookie)
    assert (kind, obj) == (L2, 5)
    assert Flow(0, 2, a.match, kind=L2, obj_id=5).cookie != a.cookie
    assert a.is_drop


def test_flow_rejects_bad_kinds_and_ids():
    with pytest.raises(ValueError):
        Flow(0, 1, (), kind=0)
    with pytest.raises(ValueError):
        Flow(0, 1, (), kind=ARP, obj_id=1 << 24)


def test_ipv4_prefix_values():
    assert ipv4_prefix_value("10.1.2.3", 32) == "10.1.2.3"
    assert ipv4_prefix_value("10.1.2.3", 24) == ("10.1.2.0", "255.255.255.0")
    assert ipv4_prefix_value("0.0.0.0", 0) is None


def test_flow_mod_serialises():
    flow = sample()
    msg = to_flow_mod(flow, FakeDatapath())
    msg.serialize()
    assert msg.cookie == flow.cookie and msg.table_id == 20 and msg.priority == 100
    kinds = [type(i).__name__ for i in msg.instructions]
    assert kinds == [
        "OFPInstructionActions",
        "OFPInstructionWriteMetadata",
        "OFPInstructionGotoTable",
    ]
    actions = msg.instructions[0].actions
    assert type(actions[0]).__name__ == "NXActionRegMove"
    assert type(actions[2]).__name__ == "OFPActionDecNwTtl"
    assert actions[3].port == ofproto_v1_3.OFPP_IN_PORT


def test_drop_flow_has_no_instructions():
    msg = to_flow_mod(Flow(0, 0, (), kind=KIND_MISS), FakeDatapath())
    msg.serialize()
    assert msg.instructions == []


def test_delete_by_cookie_uses_a_full_mask():
    msg = delete_by_cookie(20, sample().cookie, FakeDatapath())
    msg.serialize()
    assert msg.command == ofproto_v1_3.OFPFC_DELETE
    assert msg.cookie_mask == 0xFFFFFFFFFFFFFFFF and msg.cookie == sample().cookie


def test_every_generated_flow_serialises():
    m = ModelBuilder()
    dp1, dp2 = m.datapath("1"), m.datapath("2")
    under = m.network("underlay", "192.168.0.0/24", mode="physical")
    h1 = m.host("h1", dp1, under, "192.168.0.1")
    m.host("h2", dp2, under, "192.168.0.2")
    nw1, nw2 = m.network("1", "10.1.0.0/24"), m.network("2", "10.2.0.0/24")
    m.vif("a", dp1, nw1, "10.1.0.10")
    m.vif("b", dp2, nw2, "10.2.0.20")
    m.router("r", [(nw1, "10.1.0.1"), (nw2, "10.2.0.1")])
    for nw in (nw1, nw2):
        m.dpn(dp1, nw, h1)
        m.dpn(dp2, nw)
    for transport in ("tunnel", "mac2mac"):
        binding = LocalBinding(dp1, transport, {"if-a": 1, h1: 10}, TUNNEL_PORT)
        flows = Agent(m.snapshot(), binding).desired.flows().values()
        for flow in flows:
            to_flow_mod(flow, FakeDatapath()).serialize()
