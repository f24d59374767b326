"""vna.ofwire: byte-for-byte what os-ken serialises, for every flow the pipeline makes in
the unit-test worlds, every action class, deletes and the bundle framing.

(`PYTHONPATH=tests/unit pytest tests/unit -p wire_check` checks every flow any unit test
builds the same way.)"""

from __future__ import annotations

import struct

import pytest
import test_vna_acl as acl
import test_vna_nat as nat
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser
from test_vna_actions import CASES
from test_vna_incremental import Churn
from test_vna_pipeline import worlds
from vna_kit import Agent, p2v_world, two_hosts

from vna import actions as a
from vna import ofmsg, ofwire
from vna.desired import DesiredState
from vna.flows import Flow, make_match


class Datapath:
    ofproto = ofp
    ofproto_parser = parser
    id = 1


def oskn(msg) -> bytes:
    if msg.xid is None:
        msg.set_xid(0)
    msg.serialize()
    return bytes(msg.buf)


def reference(flow: Flow) -> bytes:
    return oskn(ofmsg.to_flow_mod(flow, Datapath()))


def pipeline_flows() -> list[Flow]:
    """The distinct flows of the pipeline worlds (both transports, routers, physical
    networks, random churn), plus the flows seen along churn runs."""
    flows: set[Flow] = set()
    for _label, view in worlds():
        state = DesiredState()
        state.rebuild(view)
        flows |= set(state.flows().values())
    for transport in ("tunnel", "mac2mac"):
        for seed in range(3):
            churn = Churn(seed)
            agent = Agent(churn.m.snapshot(), churn.binding(transport))
            for step in range(60):
                churn.step()
                added, _ = agent.sync(churn.m.snapshot())
                flows |= set(added)
                if step % 7 == 0:
                    agent.rebind(churn.binding(transport))
    flows |= set(acl_world().agent.desired.flows().values())
    flows |= set(nat_world().desired.flows().values())
    return sorted(flows, key=lambda f: (f.table, -f.priority, f.cookie))


def acl_world() -> acl.Host:
    """test_vna_acl's host with groups (a rule naming a group: conjunctions), members,
    and a static filter."""
    m = two_hosts()
    nw1, nw2 = m.network("1", "10.1.0.0/24"), m.network("2", "10.2.0.0/24")
    for name, dp, nw, ip in (("a1", "dp-1", nw1, "10.1.0.10"), ("a2", "dp-1", nw1, "10.1.0.11"),
                             ("b1", "dp-2", nw1, "10.1.0.20"), ("c0", "dp-1", nw2, "10.2.0.10"),
                             ("c1", "dp-2", nw2, "10.2.0.20")):
        m.vif(name, dp, nw, ip)
    m.router("r", [(nw1, "10.1.0.1"), (nw2, "10.2.0.1")])
    h = acl.Host(m)
    web = acl.group(h, "web", "tcp:22:10.1.0.0/24\nicmp:-1:0.0.0.0/0\nudp:53:10.2.0.20",
                    "if-a1", "if-b1")
    acl.group(h, "db", f"tcp:5432:{web}\ntcp:1000-1010:0.0.0.0/0", "if-a2", "if-c0")
    m.model["interfaces"]["if-c0"]["enable_filtering"] = True
    m.model.setdefault("filter_statics", {})
    fil = m.add("filters", "fil-1", interface_uuid="if-c0", mode="static",
                ingress_passthrough=False, egress_passthrough=True)
    acl.static(h, fil, "tcp", "10.1.0.11", 32, True, 0)
    acl.static(h, fil, "icmp", "10.1.0.0", 24, False)
    h.sync()
    return h


def nat_world() -> Agent:
    """test_vna_nat's gateway with a global address, a port forward and SNAT."""
    m = p2v_world()
    tr = nat.translation(m, "static_address")
    nat.static(m, tr, "172.16.0.10", "10.1.0.10")
    nat.static(m, tr, "172.16.0.11", "10.1.0.10", ports=(8080, 80))
    nat.translation(m, "snat")
    return nat.gateway(m)


FLOWS = pipeline_flows()


def test_the_worlds_cover_every_action_class_and_many_match_fields():
    kinds = {type(action) for flow in FLOWS for action in flow.actions}
    assert kinds == set(a.ACTION_TYPES) - {a.Nat}  # Nat only ever inside Ct
    assert any(action.nat for flow in FLOWS for action in flow.actions
               if isinstance(action, a.Ct))
    fields = {name for flow in FLOWS for name, _ in flow.match}
    assert {"in_port", "metadata", "eth_dst", "ipv4_dst", "reg15", "ct_state",
            "conj_id", "ip_frag", "tunnel_id"} <= fields
    assert len(FLOWS) > 300


def test_every_pipeline_flow_encodes_exactly_as_os_ken():
    mismatched = [flow for flow in FLOWS if ofwire.flow_mod(flow) != reference(flow)]
    assert not mismatched, f"{len(mismatched)} of {len(FLOWS)} differ, first: {mismatched[0]}"


def test_xid_goes_in_the_header():
    flow = FLOWS[0]
    msg = ofmsg.to_flow_mod(flow, Datapath())
    msg.set_xid(0x12345678)
    assert ofwire.flow_mod(flow, xid=0x12345678) == oskn(msg)


@pytest.mark.parametrize("action,printed", CASES, ids=[p for _, p in CASES])
def test_every_action_encodes_exactly_as_os_ken(action, printed):
    match = make_match(eth_type=0x0806 if "ARP" in printed else 0x0800)
    flow = Flow(20, 100, match, (action, a.Output(1)), goto=30, metadata=(1, 0xFF), kind=1)
    assert ofwire.flow_mod(flow) == reference(flow)


def test_every_action_class_has_an_encoder():
    assert set(ofwire.ENCODERS) == set(a.ACTION_TYPES) == set(ofmsg.ENCODERS)


@pytest.mark.parametrize("match", [
    {"eth_dst": ("01:00:00:00:00:00", "01:00:00:00:00:00")},
    {"eth_type": 0x0800, "ipv4_src": "10.1.2.3/24"},
    {"eth_type": 0x0800, "ipv4_dst": ("10.1.2.3", "255.255.0.0")},  # value masked first
    {"metadata": (0x1234_0000_0001, 0xFFFF_FFFF)},
    {"ct_state": (0x21, 0x23), "ct_zone": 7, "ct_mark": (1, 1), "reg13": 9},
    {"eth_type": 0x0800, "ip_frag": (1, 3), "in_port": 4},
    {"eth_type": 0x0806, "arp_op": 1, "arp_sha": "02:00:00:00:00:01",
     "arp_tha": "02:00:00:00:00:02", "arp_spa": "10.0.0.1", "arp_tpa": "10.0.0.2"},
    {"tunnel_id": 0x1234, "tun_ipv4_src": "192.0.2.1", "tun_ipv4_dst": "192.0.2.2"},
    {"eth_type": 0x0800, "ip_proto": 17, "udp_src": 68, "udp_dst": 67, "ip_dscp": 46},
    {"eth_type": 0x0800, "ip_proto": 1, "icmpv4_type": 8, "icmpv4_code": 0},
    {"eth_type": 0x86DD, "ipv6_src": "fe80::1", "ipv6_dst": ("2001:db8::", "ffff::")},
])
def test_match_fields_and_masks_encode_exactly_as_os_ken(match):
    flow = Flow(10, 5, make_match(match), (a.SetField("reg14", 3),), kind=1)
    assert ofwire.flow_mod(flow) == reference(flow)


def test_unknown_fields_and_actions_are_errors_naming_them():
    with pytest.raises(ValueError, match="no_such_field"):
        ofwire.flow_mod(Flow(0, 1, make_match(no_such_field=1), kind=1))
    with pytest.raises(ValueError, match="no_such_reg"):
        ofwire.flow_mod(Flow(0, 1, (), (a.SetField("no_such_reg", 1),), kind=1))
    with pytest.raises(ValueError, match="xreg9"):
        ofwire.flow_mod(Flow(0, 1, (), (a.Move("xreg9", "reg1", 32),), kind=1))

    class Strange:
        pass

    with pytest.raises(ValueError, match="Strange"):
        ofwire.encode_action(Strange())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="in_port"):
        ofwire.flow_mod(Flow(0, 1, make_match(in_port=1 << 40), kind=1))


def test_delete_by_cookie_encodes_exactly_as_os_ken():
    for table, cookie, mask in ((20, 0x0102_0304_0506_0708, ofwire.FULL_COOKIE_MASK),
                                (ofp.OFPTT_ALL, 0x0500_0000_0000_0000, 0xFF00_0000_0000_0000)):
        assert ofwire.delete_by_cookie(table, cookie, mask) == oskn(
            ofmsg.delete_by_cookie(table, cookie, Datapath(), mask))


def test_cached_bytes_are_encoded_once_per_flow():
    flow = Flow(0, 1, make_match(in_port=3), (a.Output(4),), kind=1)
    first = ofwire.flow_mod_cached(flow)
    assert first == ofwire.flow_mod(flow) and ofwire.flow_mod_cached(flow) is first
    assert ofwire.message_fields(first) == (ofwire.OFPFC_ADD, 0, flow.cookie)


def test_a_bundle_is_what_os_ken_sends_message_by_message():
    dp = Datapath()
    flags = ofp.ONF_BF_ATOMIC | ofp.ONF_BF_ORDERED
    flows = FLOWS[:5]
    messages = [ofwire.flow_mod(f) for f in flows] + [ofwire.delete_by_cookie(60, 7)]
    buf = b"".join(ofwire.bundle_chunks(9, messages, len(messages), first_xid=100))

    def xid(msg, value):
        msg.set_xid(value)
        return msg

    expected = oskn(xid(parser.ONFBundleCtrlMsg(dp, 9, ofp.ONF_BCT_OPEN_REQUEST, flags, []), 100))
    inner = [ofmsg.to_flow_mod(f, dp) for f in flows] + [ofmsg.delete_by_cookie(60, 7, dp)]
    for i, msg in enumerate(inner):
        expected += oskn(xid(parser.ONFBundleAddMsg(dp, 9, flags, msg, []), 101 + i))
    expected += oskn(xid(parser.ONFBundleCtrlMsg(dp, 9, ofp.ONF_BCT_COMMIT_REQUEST, flags, []),
                         101 + len(inner)))
    assert bytes(buf) == expected


def message_ends(buf: bytes) -> list[int]:
    """Offset after each OpenFlow message in `buf` (header length field)."""
    ends, offset = [], 0
    while offset < len(buf):
        offset += struct.unpack_from("!H", buf, offset + 2)[0]
        ends.append(offset)
    return ends


def test_bundle_chunks_cut_only_between_messages_and_join_to_the_whole_bundle():
    messages = [ofwire.flow_mod(f) for f in FLOWS[:12]]
    whole = b"".join(ofwire.bundle_chunks(3, messages, 12, first_xid=0xFFFF_FFFE))
    assert len(message_ends(whole)) == 14 and message_ends(whole)[-1] == len(whole)
    for size in (1, 300, 1000):
        pieces = list(ofwire.bundle_chunks(3, iter(messages), 12, first_xid=0xFFFF_FFFE,
                                           chunk_size=size))
        assert b"".join(pieces) == whole
        assert all(message_ends(bytes(p))[-1] == len(p) for p in pieces)
        assert all(len(p) >= size for p in pieces[:-1])
        assert len(pieces) > 1
    assert len(pieces) < 12  # 1000 bytes hold several flow_mods


def test_bundle_chunks_refuse_a_wrong_count_before_the_commit():
    messages = [ofwire.flow_mod(f) for f in FLOWS[:3]]
    pieces = ofwire.bundle_chunks(3, messages, 4, first_xid=1, chunk_size=1)
    got = [next(pieces) for _ in range(3)]  # open + add 1, add 2, add 3
    with pytest.raises(ValueError, match="3 messages, count said 4"):
        next(pieces)
    assert ofwire.ONF_ET_BUNDLE_CONTROL not in [
        struct.unpack_from("!I", p, 12)[0] for p in got[1:]]
    with pytest.raises(ValueError, match="more than 2 messages"):
        list(ofwire.bundle_chunks(3, messages, 2, first_xid=1))
