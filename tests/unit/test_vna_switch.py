"""vna.switch without a switch: the raw flow-stats reader against os-ken's own parser,
and a bundle written as one buffer with the switch's errors matched to it."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from os_ken.ofproto import ofproto_parser
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser
from test_ofwire import FLOWS

from vna import ofwire
from vna.switch import FlowKey, SwitchConnection, SwitchError, flow_keys

_STATS = struct.Struct("!HBxIIHHHH4xQQQ")  # ofp_flow_stats up to the match (spec 7.3.5.2)


def flow_stats_reply(flows, flags: int = 0, xid: int = 7) -> bytes:
    """An OFPMP_FLOW multipart reply as OVS sends it: one ofp_flow_stats per flow, with
    the flow's own match and instructions (vna.ofwire bytes) and some counters."""
    body = b""
    for i, flow in enumerate(flows):
        tail = ofwire.flow_mod(flow)[48:]  # ofp_match + instructions
        body += _STATS.pack(48 + len(tail), flow.table, 10 + i, 500, flow.priority, 0, 0, 0,
                            flow.cookie, 3 * i, 100 * i) + tail
    return struct.pack("!BBHIHH4x", ofp.OFP_VERSION, ofp.OFPT_MULTIPART_REPLY, 16 + len(body),
                       xid, ofp.OFPMP_FLOW, flags) + body


def test_flow_keys_read_what_os_ken_parses_from_the_same_bytes():
    reply = flow_stats_reply(FLOWS[:200])
    full, offset = [], 16
    while offset < len(reply):  # os-ken's own full parser, entry by entry
        stats = parser.OFPFlowStats.parser(reply, offset)
        full.append((stats.length, stats.table_id, stats.cookie, stats.priority))
        offset += stats.length
    keys = flow_keys(reply, 16)
    assert [(k.length, k.table_id, k.cookie) for k in keys] == [f[:3] for f in full]
    assert [(k.table_id, k.cookie) for k in keys] == [(f.table, f.cookie) for f in FLOWS[:200]]


def test_os_ken_hands_flow_keys_to_the_flow_stats_handler():
    reply = flow_stats_reply(FLOWS[:3], flags=ofp.OFPMPF_REPLY_MORE, xid=42)
    _version, msg_type, length, xid = struct.unpack_from("!BBHI", reply)
    msg = ofproto_parser.msg(FakeDatapath(None), ofp.OFP_VERSION, msg_type, length, xid,
                             bytearray(reply))  # what os-ken's Datapath._recv_loop calls
    assert type(msg).__name__ == "OFPFlowStatsReply"  # os-ken's event name for it
    assert isinstance(msg, parser.OFPFlowStatsReply)
    assert msg.flags == ofp.OFPMPF_REPLY_MORE and msg.xid == 42
    assert [(k.table_id, k.cookie) for k in msg.body] == [(f.table, f.cookie)
                                                           for f in FLOWS[:3]]
    assert all(isinstance(k, FlowKey) for k in msg.body)


def test_a_truncated_entry_is_an_error_not_a_loop():
    with pytest.raises(ValueError):
        flow_keys(bytes(48))  # length 0


class FakeDatapath:
    """os-ken Datapath's surface that SwitchConnection uses; `answer` plays the switch."""

    ofproto = ofp
    ofproto_parser = parser
    id = 1

    def __init__(self, answer) -> None:
        self.xid = 0xFFFF_FFF0  # wraps around inside the bundle
        self.sent: list[bytes] = []
        self.answer = answer
        self.connection: SwitchConnection | None = None

    def send(self, buf: Any) -> bool:
        self.sent.append(bytes(buf))
        self.answer(self.connection, messages(bytes(buf)))
        return True


def messages(buf: bytes) -> list[tuple[int, int, int]]:
    """(type, xid, ONF exp_type) of each message in a buffer."""
    out, offset = [], 0
    while offset < len(buf):
        _v, msg_type, length, xid, _exp, exp_type = struct.unpack_from("!BBHIII", buf, offset)
        out.append((msg_type, xid, exp_type))
        offset += length
    return out


class Reply:
    def __init__(self, xid: int, type_: int = 0, code: int = 0) -> None:
        self.xid, self.type, self.code = xid, type_, code


def connect(answer) -> tuple[SwitchConnection, FakeDatapath]:
    dp = FakeDatapath(answer)
    connection = SwitchConnection(dp)
    dp.connection = connection
    return connection, dp


def test_a_bundle_is_one_buffer_with_consecutive_xids():
    def commit_ok(connection, sent):
        connection.on_reply(Reply(sent[0][1]))
        connection.on_reply(Reply(sent[-1][1]))

    connection, dp = connect(commit_ok)
    encoded = [ofwire.flow_mod(f) for f in FLOWS[:20]]
    connection.send_bundle(encoded)
    (buf,) = dp.sent
    sent = messages(buf)
    assert [m[2] for m in sent] == [2300] + [2301] * 20 + [2300]
    assert [m[1] for m in sent] == [(0xFFFF_FFF1 + i) & 0xFFFF_FFFF for i in range(22)]
    assert dp.xid == sent[-1][1]
    inner = struct.unpack_from("!I", buf, 24 + 24 + 4)[0]  # first add's flow_mod xid
    assert inner == sent[1][1]
    assert connection._waiters == {} and connection._bundle is None


def test_an_error_on_one_flow_mod_aborts_the_bundle_and_names_it():
    def reject_third(connection, sent):
        connection.on_error(Reply(sent[3][1], ofp.OFPET_BAD_MATCH, ofp.OFPBMC_BAD_FIELD))
        connection.on_error(Reply(sent[-1][1], ofp.OFPET_EXPERIMENTER, 0))

    connection, _dp = connect(reject_third)
    with pytest.raises(SwitchError, match=r"message 2 of 5: type=4 code=6"):
        connection.send_bundle([ofwire.flow_mod(f) for f in FLOWS[:5]])
    assert connection.errors == 2 and connection._waiters == {}


def test_a_failed_commit_is_an_error_and_no_reply_times_out():
    connection, _dp = connect(lambda c, sent: c.on_error(Reply(sent[-1][1], 17, 1)))
    with pytest.raises(SwitchError, match="commit"):
        connection.send_bundle([ofwire.flow_mod(FLOWS[0])])
    connection, _dp = connect(lambda c, sent: None)
    with pytest.raises(SwitchError, match="no commit reply"):
        connection.send_bundle([ofwire.flow_mod(FLOWS[0])], timeout=0.05)
    assert connection._waiters == {} and connection._bundle is None


def test_a_generator_is_consumed_while_the_buffer_is_built_and_must_match_count():
    connection, dp = connect(lambda c, sent: c.on_reply(Reply(sent[-1][1])))
    connection.send_bundle((ofwire.flow_mod(f) for f in FLOWS[:4]), 4)
    assert len(messages(dp.sent[0])) == 6
    with pytest.raises(ValueError, match="3 messages, count said 4"):
        connection.send_bundle((ofwire.flow_mod(f) for f in FLOWS[:3]), 4)
    assert connection._waiters == {} and connection._bundle is None


def test_a_bundle_goes_out_in_pieces_and_a_wrong_count_discards_it():
    def answer_controls(connection, sent):  # the switch answers open and commit
        for _type, xid, exp_type in sent:
            if exp_type == ofwire.ONF_ET_BUNDLE_CONTROL:
                connection.on_reply(Reply(xid))

    connection, dp = connect(answer_controls)
    connection.bundle_chunk = 400
    encoded = [ofwire.flow_mod(f) for f in FLOWS[:12]]
    connection.send_bundle(iter(encoded), 12)
    assert len(dp.sent) > 2
    whole = b"".join(dp.sent)
    assert whole == b"".join(ofwire.bundle_chunks(
        struct.unpack_from("!I", whole, 16)[0], encoded, 12, 0xFFFF_FFF1))
    assert connection._waiters == {} and connection._bundle is None

    connection, dp = connect(lambda c, sent: None)
    connection.bundle_chunk = 1
    with pytest.raises(ValueError, match="3 messages, count said 4"):
        connection.send_bundle((ofwire.flow_mod(f) for f in FLOWS[:3]), 4)
    *_, last = messages(dp.sent[-1])
    assert last[2] == ofwire.ONF_ET_BUNDLE_CONTROL
    assert struct.unpack_from("!H", dp.sent[-1], 20)[0] == ofwire.ONF_BCT_DISCARD_REQUEST
    assert connection._waiters == {} and connection._bundle is None
