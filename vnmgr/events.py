"""The `events` table as vnmgr writes it: one row per committed change, pruned to a
bounded window of the newest rows.

Nothing replays events from the table: agents follow the published messages and resync
from a snapshot on any gap (docs/messaging.md), so old rows serve only as the sequence
number's source (`max(seq)`) and as a short audit trail.  The newest row is never pruned,
which keeps the sequence going (SQLite and MySQL number a new row after the highest one).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from vnet import models as m

_INSERT = insert(m.Event)
Begin = Callable[[], AbstractContextManager[Session | Connection]]


class EventLog:
    """keep: rows to keep (>= 1); batch: prune once every `batch` appends (default a
    tenth of keep, at most 1000), deleting at most 2 * batch rows at a time so that no
    prune holds the database long, even after a long unpruned history.  The table holds
    at most keep + batch rows once caught up; until then vnmgr calls `catch_up` whenever
    it is idle.  Raises ValueError for keep or batch < 1."""

    def __init__(self, keep: int, batch: int | None = None) -> None:
        if keep < 1:
            raise ValueError("events_keep must be at least 1")
        self.keep = keep
        self.batch = batch if batch is not None else max(1, min(1000, keep // 10))
        if self.batch < 1:
            raise ValueError("the prune batch must be at least 1")
        self.pruned = 0  # rows deleted since start (metrics)
        # The last prune deleted as many rows as it may: older ones remain beyond the
        # window (a database from before pruning, or a smaller events_keep).
        self.behind = False
        self._appended = 0
        self._last_seq = 0

    @staticmethod
    def append(transaction: Session | Connection, changes: list[dict[str, Any]]) -> int:
        """Add the event of the open transaction (a Session or Connection); returns its
        sequence number."""
        # A cached Core insert on the transaction's connection: the ORM's unit of work
        # (or its bulk insert, which reports no key) would cost more than the insert.
        connection = transaction.connection() if isinstance(transaction, Session) \
            else transaction
        result = connection.execute(_INSERT, {"payload": json.dumps(changes)})
        return int(result.inserted_primary_key[0])

    def committed(self, begin: Begin, seq: int) -> int:
        """After the commit of event `seq`: prune if a batch is due; rows deleted.
        begin: opens a transaction (sessionmaker.begin, Engine.begin)."""
        self._appended += 1
        if self._appended < self.batch:
            return 0
        self._appended = 0
        return self.prune(begin, seq)

    def catch_up(self, begin: Begin) -> int:
        """While `behind`, one more bounded prune (vnmgr calls it when idle)."""
        return self.prune(begin, self._last_seq) if self.behind else 0

    def prune(self, begin: Begin, seq: int) -> int:
        """Delete the oldest rows outside the window ending at `seq`, at most 2 * batch of
        them, in a transaction of their own; returns how many."""
        self._last_seq = max(self._last_seq, seq)
        cut = seq - self.keep
        with begin() as transaction:
            oldest = transaction.scalar(select(func.min(m.Event.seq)))
            if oldest is None or oldest > cut:
                self.behind = False
                return 0
            upto = min(cut, oldest + 2 * self.batch - 1)
            deleted = transaction.execute(delete(m.Event).where(m.Event.seq <= upto)).rowcount
        self.behind = upto < cut
        self.pruned += deleted
        return deleted
