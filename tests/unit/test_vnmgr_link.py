"""The agent's message tracking on its slice's topic: apply in order, resync on any sign
of loss or of a vnmgr that no longer knows this agent."""

from __future__ import annotations

import json
from typing import Any

from vna.vnmgr_link import VnmgrLink, compact_row
from vnet.errors import ApiError
from vnet.messaging import HEARTBEAT_TOPIC, node_topic
from vnet.slice import Watch


class FakeRpc:
    def __init__(self) -> None:
        self.seq, self.n, self.epoch = 5, 3, "e1"
        self.calls: list[tuple[str, dict]] = []
        self.context = None
        self.known = True

    def call(self, op: str, params: dict | None = None, **_: Any) -> Any:
        self.calls.append((op, params or {}))
        if op == "snapshot":
            return {"seq": self.seq, "model": {}, "n": self.n, "epoch": self.epoch}
        assert op == "watch"
        if not self.known:
            raise ApiError(409, "unknown node", "node_id")
        return {"seq": self.seq, "n": self.n}


def make_link() -> tuple[VnmgrLink, FakeRpc, list[tuple[str, int]]]:
    rpc = FakeRpc()
    delivered: list[tuple[str, int]] = []
    link = VnmgrLink(rpc, "inproc://unused", lambda kind, seq, _p: delivered.append((kind, seq)),
                     status=dict, node_id="vna1")
    link._snapshot()
    return link, rpc, delivered


def message(n: int, seq: int) -> list[bytes]:
    return [node_topic("vna1"), json.dumps({"seq": seq, "n": n}).encode(),
            b'{"changes": []}']


def heartbeat(n: int, seq: int) -> list[bytes]:
    return [node_topic("vna1"), json.dumps({"heartbeat": True, "seq": seq, "n": n}).encode(),
            b"{}"]


def epoch(value: str) -> list[bytes]:
    return [HEARTBEAT_TOPIC, json.dumps({"seq": 9, "epoch": value}).encode()]


def test_the_snapshot_asks_for_this_nodes_slice_with_what_it_watches() -> None:
    rpc = FakeRpc()
    link = VnmgrLink(rpc, "inproc://unused", lambda *_: None, status=dict, node_id="vna1")
    link.set_watch(Watch("0x1", frozenset({"if-a"}), frozenset({"tap0"})))
    link._snapshot()
    assert rpc.calls == [("snapshot", {"node_id": "vna1", "watch": {
        "dpid": "0x1", "iface_ids": ["if-a"], "port_names": ["tap0"]}})]


def test_messages_after_the_snapshot_are_applied_in_order_and_older_ones_skipped() -> None:
    link, _rpc, delivered = make_link()
    for n, seq in ((2, 4), (3, 5), (4, 8), (5, 12)):
        link._on_frames(message(n, seq))
    assert delivered == [("snapshot", 5), ("changes", 8), ("changes", 12)]
    assert (link.n, link.seq) == (5, 12)


def test_a_gap_in_messages_forces_a_resync() -> None:
    link, _rpc, delivered = make_link()
    link._on_frames(message(4, 6))
    link._on_frames(message(6, 8))
    assert link.seq is None  # the run loop asks for a new snapshot
    assert delivered == [("snapshot", 5), ("changes", 6)]


def test_a_heartbeat_ahead_of_us_means_the_last_message_was_lost() -> None:
    link, _rpc, _delivered = make_link()
    link._on_frames(heartbeat(3, 40))
    assert link.seq == 40  # nothing of ours happened up to seq 40
    link._on_frames(heartbeat(4, 41))
    assert link.seq is None


def test_a_new_vnmgr_epoch_resyncs() -> None:
    link, _rpc, _delivered = make_link()
    link._on_frames(epoch("e1"))
    assert link.seq == 5
    link._on_frames(epoch("e2"))  # vnmgr restarted or reloaded its model
    assert link.seq is None


def test_a_changed_watch_is_sent_and_an_unknown_node_resyncs() -> None:
    link, rpc, _delivered = make_link()
    link.set_watch(Watch("0x1"))
    link._send_watch()
    assert rpc.calls[-1] == ("watch", {"node_id": "vna1", "watch": {
        "dpid": "0x1", "iface_ids": [], "port_names": []}})
    assert link._watch_sent == Watch("0x1")
    rpc.known = False
    link.set_watch(Watch("0x2"))
    link._send_watch()
    assert link.seq is None


def test_a_status_answer_saying_resync_resyncs() -> None:
    link, rpc, _delivered = make_link()
    rpc.call = lambda op, **_: {"seq": 5, "resync": True}  # type: ignore[method-assign]
    link._report_status()
    assert link.seq is None


def test_rows_arrive_without_the_timestamps_the_agent_never_reads() -> None:
    row = {"uuid": "if-a", "mode": "vif", "network_uuid": None, "id": 7,
           "created_at": "2026-11-30T01:31:26Z", "updated_at": "2026-11-30T01:31:27Z"}
    changes: list[Any] = []
    link = VnmgrLink(FakeRpc(), "inproc://unused",
                     lambda kind, _seq, payload: changes.append(payload), status=dict,
                     node_id="vna1")
    link._snapshot()
    body = {"changes": [{"op": "upsert", "resource": "interfaces", "uuid": "if-a",
                         "data": row}]}
    link._on_frames([node_topic("vna1"), json.dumps({"seq": 6, "n": 4}).encode(),
                     json.dumps(body).encode()])
    data = changes[-1][0]["data"]
    assert data == {k: v for k, v in row.items() if not k.endswith("_at")}
    # The snapshot is decoded with the same hook (vnet.messaging.RpcClient.call).
    assert json.loads(json.dumps({"model": {"interfaces": {"if-a": row}}}),
                      object_hook=compact_row)["model"]["interfaces"]["if-a"] == data
