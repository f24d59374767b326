"""The agent's link to vnmgr: a snapshot, then the event stream, resynced on any gap.

Events carry consecutive sequence numbers. The agent applies an event only if it is the
next one; anything else (a jump, or a heartbeat announcing a sequence the agent has not
seen) means events were lost, and the agent asks for a fresh snapshot. Events that are
older than the snapshot are skipped, so subscribing before the snapshot loses nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import zmq

from vnet.errors import ApiError
from vnet.messaging import GLOBAL_TOPIC, RpcClient, decode

log = logging.getLogger("vna.link")

Deliver = Callable[[str, int, Any], None]


class VnmgrLink:
    def __init__(self, rpc: RpcClient, pub_endpoint: str, deliver: Deliver,
                 status: Callable[[], dict[str, Any]], status_interval: float = 2.0) -> None:
        self.rpc = rpc
        self.pub_endpoint = pub_endpoint
        self.deliver = deliver
        self.status = status
        self.status_interval = status_interval
        self.seq: int | None = None
        self._heartbeat_seen = False  # an up-to-date heartbeat arrived since the snapshot
        self.resyncs = 0
        self.events_received = 0
        self.paused = threading.Event()  # fault tests pause reception to force a gap
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vnmgr-link", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def request_resync(self) -> None:
        self.seq = None

    def _run(self) -> None:
        sub = self.rpc.context.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.RCVHWM, 100000)
        sub.setsockopt(zmq.SUBSCRIBE, GLOBAL_TOPIC)
        sub.connect(self.pub_endpoint)
        next_status = 0.0
        try:
            while not self._stop.is_set():
                if self.seq is None:
                    self._snapshot()
                if sub.poll(200, zmq.POLLIN):
                    _topic, data = sub.recv_multipart()
                    if not self.paused.is_set():
                        self._on_message(decode(data))
                if time.monotonic() >= next_status:
                    next_status = time.monotonic() + self.status_interval
                    self._report_status()
        finally:
            sub.close()

    def _snapshot(self) -> None:
        try:
            snapshot = self.rpc.call("snapshot", timeout_ms=30000)
        except ApiError as exc:
            log.warning("snapshot from vnmgr failed (%s); retrying", exc.message)
            self._stop.wait(1.0)
            return
        self.seq = int(snapshot["seq"])
        self._heartbeat_seen = False
        self.resyncs += 1
        log.info("snapshot at seq %d", self.seq)
        self.deliver("snapshot", self.seq, snapshot["model"])

    def _on_message(self, message: dict[str, Any]) -> None:
        seq = int(message["seq"])
        if self.seq is None:
            return
        if message.get("heartbeat"):
            # A heartbeat older than our snapshot is merely late, unless an up-to-date
            # one came before it: then vnmgr's sequence went back (its database was
            # replaced). A newer one proves loss. Either way, resync.
            if seq > self.seq or (seq < self.seq and self._heartbeat_seen):
                log.warning("heartbeat at seq %d but applied %d: resyncing", seq, self.seq)
                self.seq = None
            self._heartbeat_seen = seq == self.seq
            return
        self.events_received += 1
        if seq <= self.seq:
            return
        if seq != self.seq + 1:
            log.warning("event seq %d after %d: gap, resyncing", seq, self.seq)
            self.seq = None
            return
        self.seq = seq
        self.deliver("changes", seq, message["changes"])

    def _report_status(self) -> None:
        try:
            self.rpc.call("agent_status", params={**self.status(), "seq": self.seq or 0},
                          timeout_ms=1000)
        except ApiError:
            pass  # vnmgr away: the next report will do
