"""The agent's sequence tracking: apply in order, resync on any sign of loss."""

from __future__ import annotations

from typing import Any

from vna.vnmgr_link import VnmgrLink


class FakeRpc:
    def __init__(self) -> None:
        self.seq = 5
        self.snapshots = 0
        self.context = None

    def call(self, op: str, **_: Any) -> Any:
        assert op == "snapshot"
        self.snapshots += 1
        return {"seq": self.seq, "model": {"seq_marker": self.seq}}


def make_link() -> tuple[VnmgrLink, FakeRpc, list[tuple[str, int]]]:
    rpc = FakeRpc()
    delivered: list[tuple[str, int]] = []
    link = VnmgrLink(rpc, "inproc://unused", lambda kind, seq, _p: delivered.append((kind, seq)),
                     status=dict)
    link._snapshot()
    return link, rpc, delivered


def event(seq: int) -> dict[str, Any]:
    return {"seq": seq, "changes": []}


def heartbeat(seq: int) -> dict[str, Any]:
    return {"heartbeat": True, "seq": seq}


def test_events_after_the_snapshot_are_applied_in_order_and_older_ones_skipped() -> None:
    link, _rpc, delivered = make_link()
    for seq in (4, 5, 6, 7):
        link._on_message(event(seq))
    assert delivered == [("snapshot", 5), ("changes", 6), ("changes", 7)]
    assert link.seq == 7


def test_a_gap_in_events_forces_a_resync() -> None:
    link, _rpc, delivered = make_link()
    link._on_message(event(6))
    link._on_message(event(8))
    assert link.seq is None  # the run loop asks for a new snapshot
    assert delivered == [("snapshot", 5), ("changes", 6)]


def test_a_heartbeat_ahead_of_us_means_the_last_events_were_lost() -> None:
    link, _rpc, _delivered = make_link()
    link._on_message(heartbeat(5))
    assert link.seq == 5
    link._on_message(heartbeat(6))
    assert link.seq is None


def test_a_late_heartbeat_is_ignored_but_a_sequence_going_back_resyncs() -> None:
    link, _rpc, _delivered = make_link()
    link._on_message(heartbeat(3))  # sent before our snapshot
    assert link.seq == 5
    link._on_message(heartbeat(5))
    link._on_message(heartbeat(1))  # vnmgr's database was replaced
    assert link.seq is None
