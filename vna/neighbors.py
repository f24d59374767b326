"""MAC bindings on physical networks (OVN's MAC_Binding): the MACs of addresses that are
not in the model - an upstream router, an external host - learned from their ARP
replies to a gateway router port, refreshed while in use and expired when they stop
answering.

The table is the agent's own state (like its ofports): it reaches the flows through
LocalBinding.neighbors, so a learned or expired binding recomputes its network's flows
(vna.dirty).  Times are time.monotonic() seconds.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

Key = tuple[str, str]  # (network uuid, IPv4 address)

# Re-ask a learned binding this often; forget it after this long without an answer.
REFRESH_SECONDS = 30.0
EXPIRE_SECONDS = 3 * REFRESH_SECONDS
# At most one request per address per this interval (a miss punts every packet).
REQUEST_INTERVAL = 1.0


@dataclass
class Binding:
    mac: str
    confirmed: float  # last ARP reply
    asked: float = 0.0  # last request sent


class NeighborTable:
    """Thread-safe: packet-in handlers learn on the agent's worker, the refresh timer
    reads and expires."""

    def __init__(self, clock=time.monotonic) -> None:
        self._lock = threading.Lock()
        self._bindings: dict[Key, Binding] = {}
        self._asked: dict[Key, float] = {}  # unresolved addresses: last request
        self._clock = clock

    def snapshot(self) -> dict[Key, str]:
        with self._lock:
            return {key: b.mac for key, b in sorted(self._bindings.items())}

    def learn(self, network: str, ipv4: str, mac: str) -> bool:
        """Records an ARP reply; True when the flows must change (new or moved MAC)."""
        key, now = (network, ipv4), self._clock()
        with self._lock:
            self._asked.pop(key, None)
            old = self._bindings.get(key)
            self._bindings[key] = Binding(mac.lower(), now)
            return old is None or old.mac != mac.lower()

    def should_ask(self, network: str, ipv4: str) -> bool:
        """Whether to send an ARP request for an unresolved address now (rate limit)."""
        key, now = (network, ipv4), self._clock()
        with self._lock:
            if now - self._asked.get(key, -REQUEST_INTERVAL) < REQUEST_INTERVAL:
                return False
            self._asked[key] = now
            return True

    def tick(self) -> tuple[list[Key], bool]:
        """(addresses to re-ask now, whether any binding expired)."""
        now = self._clock()
        with self._lock:
            expired = [k for k, b in self._bindings.items() if now - b.confirmed > EXPIRE_SECONDS]
            for key in expired:
                del self._bindings[key]
            due = [k for k, b in self._bindings.items()
                   if now - b.confirmed > REFRESH_SECONDS and now - b.asked > REFRESH_SECONDS / 3]
            for key in due:
                self._bindings[key].asked = now
        return sorted(due), bool(expired)
