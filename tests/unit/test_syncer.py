"""The syncer sends only the difference between desired and installed flows."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from os_ken.ofproto import ofproto_v1_3, ofproto_v1_3_parser
from vna_kit import decode_flow_mod

from vna.actions import Output
from vna.features.l2 import KIND_IFACE
from vna.flows import Flow, make_match
from vna.pipeline import Table
from vna.syncer import Syncer


class FakeDatapath:
    ofproto = ofproto_v1_3
    ofproto_parser = ofproto_v1_3_parser


@dataclass
class Stat:
    table_id: int
    cookie: int


class FakeConnection:
    """Holds a flow table as {(table, cookie)} and applies bundles to it."""

    def __init__(self, installed: list[Flow]) -> None:
        self.datapath = FakeDatapath()
        self.dpid = 1
        self.table = {(f.table, f.cookie) for f in installed}
        self.bundles: list[list[Any]] = []

    def dump_flows(self) -> list[Stat]:
        return [Stat(t, c) for t, c in self.table]

    def send_bundle(self, encoded: Iterable[bytes], count: int | None = None) -> None:
        messages = [decode_flow_mod(m) for m in encoded]
        self.bundles.append(messages)
        for msg in messages:
            key = (msg.table_id, msg.cookie)
            if msg.command == ofproto_v1_3.OFPFC_ADD:
                self.table.add(key)
            else:
                self.table.discard(key)


def flow(ip: str, port: int = 1) -> Flow:
    return Flow(table=Table.L2_LOOKUP, priority=100, match=make_match(eth_type=0x0800, ipv4_dst=ip),
                actions=(Output(port),), kind=KIND_IFACE, obj_id=7)


def desired(*flows: Flow) -> dict[int, Flow]:
    return {f.cookie: f for f in flows}


def test_full_sync_adds_missing_deletes_stale_and_keeps_the_rest() -> None:
    keep, stale, new = flow("10.0.0.1"), flow("10.0.0.2"), flow("10.0.0.3")
    connection = FakeConnection([keep, stale])
    stats = Syncer().full_sync(connection, desired(keep, new))  # type: ignore[arg-type]
    assert (stats.added, stats.deleted) == (1, 1)
    assert connection.table == {(60, keep.cookie), (60, new.cookie)}


def test_full_sync_moves_a_cookie_installed_in_another_table() -> None:
    """Same cookie, other table: not the same flow (the diff keys on (table, cookie))."""
    wanted = flow("10.0.0.1")
    connection = FakeConnection([])
    connection.table = {(0, wanted.cookie)}
    stats = Syncer().full_sync(connection, desired(wanted))  # type: ignore[arg-type]
    assert (stats.added, stats.deleted) == (1, 1)
    assert connection.table == {(60, wanted.cookie)}


def test_full_sync_of_an_identical_table_sends_nothing() -> None:
    flows = [flow(f"10.0.0.{i}") for i in range(1, 50)]
    connection = FakeConnection(flows)
    syncer = Syncer()
    stats = syncer.full_sync(connection, desired(*flows))  # type: ignore[arg-type]
    assert (stats.added, stats.deleted, syncer.flow_mods_sent) == (0, 0, 0)
    assert connection.bundles == []


def test_changed_flow_is_added_before_the_old_one_is_deleted() -> None:
    old, changed = flow("10.0.0.1", port=1), flow("10.0.0.1", port=2)
    connection = FakeConnection([old])
    Syncer().apply(connection, [changed], [old])  # type: ignore[arg-type]
    (bundle,) = connection.bundles
    assert [m.command for m in bundle] == [ofproto_v1_3.OFPFC_ADD, ofproto_v1_3.OFPFC_DELETE]


def test_a_flow_removed_and_readded_in_one_step_is_not_deleted() -> None:
    same = flow("10.0.0.1")
    connection = FakeConnection([same])
    Syncer().apply(connection, [same], [same])  # type: ignore[arg-type]
    assert connection.table == {(60, same.cookie)}


def test_additions_go_by_table_then_descending_priority_and_encode_once() -> None:
    flows = [Flow(table=t, priority=p, match=make_match(in_port=p), actions=(Output(1),),
                  kind=KIND_IFACE) for t, p in ((60, 1), (0, 5), (60, 100), (0, 200))]
    connection = FakeConnection([])
    syncer = Syncer()
    syncer.full_sync(connection, desired(*flows))  # type: ignore[arg-type]
    (bundle,) = connection.bundles
    assert [(m.table_id, m.priority) for m in bundle] == [(0, 200), (0, 5), (60, 100), (60, 1)]
    assert all(f._wire is not None for f in flows)  # kept for the next resync
    uncached = [Flow(0, 1, make_match(in_port=9), kind=KIND_IFACE)]
    Syncer(cache_wire=False).apply(connection, uncached, [])  # type: ignore[arg-type]
    assert uncached[0]._wire is None
