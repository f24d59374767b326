"""Which datapaths have a live vna, from the agents' status reports and their absence.

Every vna reports its status (`agent_status`: node_id, connected, datapath_uuid) every
2 s, and at once when its switch connects or disconnects.  A datapath is connected when
the last report of some node, no older than `timeout` seconds, says that node's switch is
connected and is that datapath.  vnmgr compares this with the stored `is_connected` and
writes the difference as ordinary updates (vnmgr.service), so it reaches the API and the
agents as numbered events.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping


class Liveness:
    """timeout: seconds without a report after which a node's datapath is disconnected;
    stall: a gap between two `tick` calls longer than this (vnmgr busy with one long
    request, e.g. a snapshot at 100,000 rows) is not held against the agents, whose
    reports could not be read meanwhile.  clock: monotonic seconds (tests)."""

    def __init__(self, timeout: float, stall: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout = timeout
        self.stall = stall
        self.clock = clock
        self._started = self._last_tick = clock()
        self._seen: dict[str, float] = {}  # node_id -> time of its last report
        self._datapath: dict[str, str | None] = {}  # node_id -> datapath its switch is

    def report(self, node_id: str, connected: bool, datapath_uuid: str | None) -> None:
        self._seen[node_id] = self.clock()
        self._datapath[node_id] = datapath_uuid if connected else None

    def tick(self) -> None:
        """Called from vnmgr's loop between requests."""
        now = self.clock()
        gap = now - self._last_tick
        self._last_tick = now
        if gap > self.stall:
            self._seen = {node: seen + gap for node, seen in self._seen.items()}
            self._started += gap

    def live(self) -> set[str]:
        """Datapath uuids a node reported connected within `timeout`."""
        now = self.clock()
        return {dp for node, dp in self._datapath.items()
                if dp is not None and now - self._seen[node] <= self.timeout}

    def changes(self, stored: Mapping[str, bool]) -> dict[str, bool]:
        """stored: datapath uuid -> its is_connected; returns uuid -> the value to write,
        for those that differ.  No datapath is marked disconnected before `timeout` has
        passed since start (the agents of a restarted vnmgr have not reported yet)."""
        live = self.live()
        settled = self.clock() - self._started >= self.timeout
        return {uuid: uuid in live for uuid, connected in stored.items()
                if (uuid in live) != connected and (uuid in live or settled)}
