"""The events table stays a bounded window (vnmgr.events), and an agent that misses
messages meanwhile catches up from a snapshot, never from the table."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import zmq
from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from vna.vnmgr_link import VnmgrLink
from vnet import models as m
from vnet.db import make_engine, make_sessionmaker
from vnet.messaging import RpcClient
from vnmgr.events import EventLog
from vnmgr.service import Vnmgr


@pytest.fixture
def memory() -> Iterator[Engine]:
    """An in-memory SQLite database (one shared connection): the 100,000 writes below
    measure the pruning, not the disk."""
    engine = make_engine("sqlite://", poolclass=StaticPool)
    m.Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


def rows(engine: Engine) -> tuple[int, int, int]:
    """(count, min seq, max seq) of the events table."""
    with engine.connect() as connection:
        count, low, high = connection.execute(
            select(func.count(), func.min(m.Event.seq), func.max(m.Event.seq))).one()
    return count, low or 0, high or 0


@contextmanager
def transaction(connection: Connection) -> Iterator[Connection]:
    with connection.begin():
        yield connection


def test_the_table_stays_bounded_under_100000_writes(memory: Engine) -> None:
    """vnmgr's write path as far as the table sees it: one transaction per event, then
    the pruning check (vnmgr.service.Vnmgr._write)."""
    events = EventLog(keep=1000, batch=100)
    sizes = []
    with memory.connect() as connection:
        for i in range(100_000):
            with connection.begin():
                seq = events.append(connection, [{"resource": "networks", "uuid": str(i)}])
            events.committed(lambda: transaction(connection), seq)
            if i % 5000 == 4999:
                sizes.append(rows(memory)[0])
    count, low, high = rows(memory)
    assert high == 100_000  # the sequence never restarts: the newest row stays
    assert high - low + 1 == count  # a contiguous window of the newest rows
    assert 1000 <= count <= 1100, count
    assert max(sizes) <= 1100, sizes
    assert events.pruned == 100_000 - count


def test_a_long_history_is_pruned_a_little_at_a_time(memory: Engine) -> None:
    """A database from before pruning (or with a smaller events_keep) is caught up over
    several writes, never in one long delete."""
    with memory.begin() as connection:
        for i in range(5000):
            EventLog.append(connection, [{"i": i}])
    events = EventLog(keep=100, batch=10)
    deleted = [events.prune(memory.begin, 5000) for _ in range(3)]
    assert deleted == [20, 20, 20] and events.behind
    while events.catch_up(memory.begin):  # vnmgr calls it when idle
        pass
    assert not events.behind
    assert rows(memory) == (100, 4901, 5000)


@pytest.mark.parametrize("keep", [0, -5])
def test_events_keep_below_one_is_refused(keep: int) -> None:
    with pytest.raises(ValueError, match="events_keep"):
        EventLog(keep)


# ---------------------------------------------------------------- through vnmgr

@pytest.fixture
def vnmgr(tmp_path: Path) -> Iterator[tuple[Vnmgr, zmq.Context, str, str]]:
    """A vnmgr serving in a thread on inproc sockets, keeping 20 events."""
    engine = make_engine(f"sqlite:///{tmp_path / 'vnmgr.sqlite3'}")
    m.Base.metadata.create_all(engine)
    context = zmq.Context()
    rpc, pub = "inproc://rpc", "inproc://pub"
    service = Vnmgr(make_sessionmaker(engine), rpc, pub, heartbeat_interval=0.2,
                    context=context, events_keep=20)
    thread = threading.Thread(target=service.serve_forever, daemon=True)
    thread.start()
    yield service, context, rpc, pub
    service.running = False
    thread.join(timeout=5)
    service.close()
    context.destroy(linger=0)
    engine.dispose()


def rename_datapath(rpc: RpcClient, i: int) -> None:
    """A write in every node's slice (each slice holds every datapath row)."""
    rpc.call("update", "datapaths", "dp-1", params={"display_name": f"dp {i}"})


def test_an_agent_behind_the_window_resyncs_from_a_snapshot(vnmgr) -> None:  # type: ignore[no-untyped-def]
    service, context, rpc_endpoint, pub = vnmgr
    rpc = RpcClient(rpc_endpoint, 5000, context=context)
    delivered: list[tuple[str, int, object]] = []
    link = VnmgrLink(rpc, pub, lambda kind, seq, payload: delivered.append((kind, seq, payload)),
                     status=lambda: {"node_id": "vna1", "connected": False}, node_id="vna1",
                     status_interval=0.2)
    link.start()
    try:
        rpc.call("create", "datapaths", params={"uuid": "dp-1", "display_name": "dp",
                                                "dpid": "0x1", "node_id": "vna2"})
        wait_for(lambda: link.seq is not None and link.n >= 1)
        link.paused.set()  # the agent hears nothing from here on, as on a lossy network
        for i in range(60):  # three times the window
            rename_datapath(rpc, i)
        count, oldest, newest = rows(service.sessions.kw["bind"])
        assert count <= 20 + service.events.batch and oldest > link.seq, \
            "the events the agent missed are no longer in the table"
        resyncs = link.resyncs
        link.paused.clear()
        wait_for(lambda: link.resyncs > resyncs and link.seq == newest)
    finally:
        link.stop()
    kind, seq, model = delivered[-1]
    assert (kind, seq) == ("snapshot", newest)
    assert isinstance(model, dict)


def wait_for(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
