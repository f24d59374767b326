"""IPv4 fragment reassembly and fragmentation for the datagrams the agent answers itself
(RFC 791 section 3.2, "Fragmentation and Reassembly"; RFC 815 for the bookkeeping).

The switch cannot reassemble, so a feature that must see a whole datagram punts its
fragments and feeds them to a `Reassembler`.  Its memory is bounded because every VM
can send fragments at its meter's rate:

* a datagram is identified by a caller's key, by RFC 791 (source, destination,
  protocol, identification) plus whatever else separates senders (the vna adds its
  datapath and the ingress port);
* an incomplete datagram is dropped `timeout` seconds after its first fragment (RFC 791's
  recommended initial timer is 15 s), checked whenever a fragment arrives;
* at most `max_per_source` datagrams per source (a VM evicts its own oldest) and
  `max_datagrams` / `max_bytes` in all (the oldest anywhere is evicted), each fragment
  costing its data plus FRAGMENT_OVERHEAD bytes;
* a datagram whose end passes 65535 bytes (header included) is dropped ("ping of
  death"); so is one with fragments that overlap partially or disagree on its end.
  RFC 791 lets a later copy overwrite, but overlaps are how filters are evaded
  (RFC 1858) and Linux has discarded such IPv4 datagrams since 4.19 (IPv6 forbids them,
  RFC 5722); an exact duplicate (same offset and length, a retransmission) is ignored.

Since stored fragments never overlap, a datagram is complete when its last fragment
(MF clear) has been seen and the stored lengths add up to its end.  The caller learns
the largest fragment seen (IP total length), what fit the path on the way in, and
fragments its answer to that size with `fragment`.
"""

from __future__ import annotations

import bisect
import time
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

IP_MAX = 65535  # largest IPv4 datagram, header included (16-bit total length)
MIN_MTU = 68  # RFC 791: every module forwards a 68-octet datagram unfragmented
FRAGMENT_OVERHEAD = 64  # bytes charged per stored fragment besides its data

DEFAULT_TIMEOUT = 15.0
DEFAULT_MAX_DATAGRAMS = 64
DEFAULT_MAX_PER_SOURCE = 8
DEFAULT_MAX_BYTES = 1 << 20


@dataclass(frozen=True)
class Fragment:
    """One fragment's place in its datagram: byte offset of its data, the MF flag, and
    the data (the IP payload of the fragment)."""

    offset: int
    more: bool
    data: bytes

    @property
    def end(self) -> int:
        return self.offset + len(self.data)


@dataclass(frozen=True)
class Reassembled:
    """A complete datagram's payload and the largest fragment (IP total length) seen."""

    payload: bytes
    largest: int


@dataclass
class _Pending:
    source: Hashable
    started: float
    offsets: list[int] = field(default_factory=list)  # sorted
    data: dict[int, bytes] = field(default_factory=dict)  # offset -> data
    end: int | None = None  # known once the last fragment (MF clear) arrived
    received: int = 0  # data bytes stored (fragments never overlap)
    largest: int = 0
    cost: int = 0


class Reassembler:
    """Incomplete datagrams by key; `add` returns the datagram a fragment completes.
    `dropped` counts why fragments or datagrams were thrown away: "timeout", "evicted",
    "too_large", "overlap", "malformed", and "duplicate" (an exact copy, ignored)."""

    def __init__(
        self,
        timeout: float = DEFAULT_TIMEOUT,
        max_datagrams: int = DEFAULT_MAX_DATAGRAMS,
        max_per_source: int = DEFAULT_MAX_PER_SOURCE,
        max_bytes: int = DEFAULT_MAX_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_bytes < IP_MAX + FRAGMENT_OVERHEAD:
            raise ValueError("max_bytes must hold at least one largest datagram")
        self.timeout = timeout
        self.max_datagrams = max_datagrams
        self.max_per_source = max_per_source
        self.max_bytes = max_bytes
        self.clock = clock
        self.dropped: Counter[str] = Counter()
        self._pending: dict[Hashable, _Pending] = {}  # insertion order = age
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def bytes_held(self) -> int:
        return self._bytes

    def clear(self) -> None:
        self._pending.clear()
        self._bytes = 0

    def expire(self) -> int:
        """Drop the datagrams whose first fragment is older than the timeout; returns
        how many.  Called by `add`; callers with no traffic may call it themselves."""
        deadline = self.clock() - self.timeout
        expired = [k for k, p in self._pending.items() if p.started <= deadline]
        for key in expired:
            self._drop(key, "timeout")
        return len(expired)

    def add(self, key: Hashable, source: Hashable, fragment: Fragment, header_len: int = 20,
            size: int | None = None) -> Reassembled | None:
        """Store one fragment of datagram `key` from `source` (`header_len`: its IP
        header length, `size`: its IP total length); the whole datagram once this
        fragment completes it, else None."""
        self.expire()
        size = header_len + len(fragment.data) if size is None else size
        if fragment.offset % 8 or (fragment.more and (not fragment.data
                                                      or len(fragment.data) % 8)):
            self.dropped["malformed"] += 1  # RFC 791: offsets in 8-octet units
            return None
        if header_len + fragment.end > IP_MAX:
            self.dropped["too_large"] += 1
            if key in self._pending:
                self._drop(key, "too_large", count=False)
            return None
        pending = self._pending.get(key)
        if pending is None:
            pending = self._admit(key, source)
        verdict = _place(pending, fragment)
        if verdict is not None:
            if verdict == "duplicate":
                self.dropped["duplicate"] += 1
            else:
                self._drop(key, verdict)
            return None
        cost = len(fragment.data) + FRAGMENT_OVERHEAD
        if not self._make_room(cost, keep=key):
            self._drop(key, "evicted")
            return None
        bisect.insort(pending.offsets, fragment.offset)
        pending.data[fragment.offset] = fragment.data
        pending.received += len(fragment.data)
        pending.largest = max(pending.largest, size)
        pending.cost += cost
        self._bytes += cost
        if pending.end is None or pending.received != pending.end:
            return None
        del self._pending[key]
        self._bytes -= pending.cost
        payload = b"".join(pending.data[o] for o in pending.offsets)
        return Reassembled(payload, pending.largest)

    # ------------------------------------------------------------------ internals
    def _admit(self, key: Hashable, source: Hashable) -> _Pending:
        mine = [k for k, p in self._pending.items() if p.source == source]
        for old in mine[: max(0, len(mine) - self.max_per_source + 1)]:
            self._drop(old, "evicted")
        while len(self._pending) >= self.max_datagrams:
            self._drop(next(iter(self._pending)), "evicted")
        pending = self._pending[key] = _Pending(source, self.clock())
        return pending

    def _make_room(self, cost: int, keep: Hashable) -> bool:
        """Evict the oldest datagrams but `keep` until `cost` more bytes fit."""
        for old in list(self._pending):
            if self._bytes + cost <= self.max_bytes:
                break
            if old != keep:
                self._drop(old, "evicted")
        return self._bytes + cost <= self.max_bytes

    def _drop(self, key: Hashable, reason: str, count: bool = True) -> None:
        pending = self._pending.pop(key)
        self._bytes -= pending.cost
        if count:
            self.dropped[reason] += 1


def _place(pending: _Pending, fragment: Fragment) -> str | None:
    """Why `fragment` cannot be stored in `pending` ("duplicate", "overlap"), or None."""
    if not fragment.more:
        if pending.end is not None and pending.end != fragment.end:
            return "overlap"  # two different ends
        if pending.offsets and pending.offsets[-1] + len(pending.data[pending.offsets[-1]]) \
                > fragment.end:
            return "overlap"  # data beyond the end
    elif pending.end is not None and fragment.end > pending.end:
        return "overlap"
    i = bisect.bisect_left(pending.offsets, fragment.offset)
    if i < len(pending.offsets) and pending.offsets[i] == fragment.offset:
        same = pending.data[fragment.offset]
        return "duplicate" if len(same) == len(fragment.data) else "overlap"
    if i > 0:
        before = pending.offsets[i - 1]
        if before + len(pending.data[before]) > fragment.offset:
            return "overlap"
    if i < len(pending.offsets) and fragment.end > pending.offsets[i]:
        return "overlap"
    if not fragment.more:
        pending.end = fragment.end
    return None


def fragment(payload: bytes, max_size: int, header_len: int = 20) -> list[Fragment]:
    """`payload` cut into fragments whose datagrams (with a `header_len` header) are at
    most `max_size` bytes (never below RFC 791's 68), data in 8-octet units."""
    per = (max(max_size, MIN_MTU) - header_len) // 8 * 8
    if len(payload) <= per:
        return [Fragment(0, False, payload)]
    return [Fragment(off, off + per < len(payload), payload[off:off + per])
            for off in range(0, len(payload), per)]
