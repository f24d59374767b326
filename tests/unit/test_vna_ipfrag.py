"""vna.ipfrag: IPv4 reassembly (RFC 791, RFC 815) with bounded memory, and
fragmentation of the answers."""

from __future__ import annotations

import random

import pytest

from vna.ipfrag import (
    FRAGMENT_OVERHEAD,
    IP_MAX,
    Fragment,
    Reassembled,
    Reassembler,
    fragment,
)

DATA = bytes(range(256)) * 12  # 3072 bytes


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def pieces(data: bytes, size: int) -> list[Fragment]:
    """`data` cut by hand into fragments of `size` data bytes (a multiple of 8)."""
    return [Fragment(o, o + size < len(data), data[o:o + size]) for o in range(0, len(data), size)]


def feed(r: Reassembler, frags: list[Fragment], key: object = "k", source: object = "s"
         ) -> list[Reassembled | None]:
    return [r.add(key, source, f) for f in frags]


def test_in_order_and_shuffled_fragments_give_the_datagram_once() -> None:
    frags = pieces(DATA, 1480)
    for order in (frags, frags[::-1], random.Random(7).sample(frags, len(frags))):
        r = Reassembler()
        results = feed(r, order)
        assert results[:-1] == [None] * (len(frags) - 1)
        assert results[-1] == Reassembled(DATA, 20 + 1480)
        assert len(r) == 0 and r.bytes_held == 0


def test_largest_is_the_largest_ip_datagram_seen() -> None:
    r = Reassembler()
    frags = pieces(DATA, 1424)
    for f in frags[:-1]:
        assert r.add("k", "s", f, header_len=24, size=24 + len(f.data)) is None
    assert r.add("k", "s", frags[-1], header_len=24).largest == 24 + 1424


def test_an_exact_duplicate_is_ignored() -> None:
    r = Reassembler()
    a, b, c = pieces(DATA, 1480)
    assert feed(r, [a, b, b, a]) == [None] * 4
    assert r.dropped == {"duplicate": 2}
    assert r.add("k", "s", c) == Reassembled(DATA, 1500)


# Held: a = [0, 1480), b = [1480, 2960), c = [2960, 3072) (last).
@pytest.mark.parametrize("held,overlapping", [
    pytest.param("ab", Fragment(1472, True, DATA[1472:1488]), id="into-the-previous"),
    pytest.param("ab", Fragment(8, True, DATA[8:16]), id="inside-the-first"),
    pytest.param("ab", Fragment(1480, True, DATA[1480:1488]), id="same-offset-other-length"),
    pytest.param("ac", Fragment(1480, True, DATA[1480:2968]), id="into-the-next"),
    pytest.param("ac", Fragment(1480, False, DATA[1480:1488]), id="another-end"),
    pytest.param("ac", Fragment(3072, True, b"x" * 8), id="past-the-end"),
])
def test_a_partial_overlap_discards_the_whole_datagram(held: str, overlapping: Fragment
                                                       ) -> None:
    r = Reassembler()
    frags = dict(zip("abc", pieces(DATA, 1480), strict=True))
    assert feed(r, [frags[x] for x in held] + [overlapping]) == [None] * 3
    assert r.dropped == {"overlap": 1}
    assert len(r) == 0 and r.bytes_held == 0
    missing = next(x for x in "abc" if x not in held)
    assert r.add("k", "s", frags[missing]) is None  # a new datagram: the old one is gone


def test_a_last_fragment_shorter_than_data_already_held_is_an_overlap() -> None:
    r = Reassembler()
    a, b, _ = pieces(DATA, 1480)
    feed(r, [a, b])
    assert r.add("k", "s", Fragment(1480, False, DATA[1480:1600])) is None
    assert r.dropped == {"overlap": 1} and len(r) == 0


def test_past_65535_bytes_is_dropped() -> None:
    r = Reassembler()
    assert r.add("k", "s", Fragment(0, True, DATA[:1480])) is None
    # offset 65512 + 20 header + 8 data = 65540 > 65535: the "ping of death"
    assert r.add("k", "s", Fragment(65512, False, b"x" * 8)) is None
    assert r.dropped == {"too_large": 1} and len(r) == 0 and r.bytes_held == 0
    # exactly 65535 is fine
    big = bytes(IP_MAX - 20)
    assert feed(r, pieces(big, 1480))[-1] == Reassembled(big, 1500)


def test_fragments_not_in_eight_octet_units_are_dropped() -> None:
    r = Reassembler()
    assert r.add("k", "s", Fragment(0, True, b"x" * 10)) is None
    assert r.add("k", "s", Fragment(0, True, b"")) is None
    assert r.dropped == {"malformed": 2} and len(r) == 0


def test_an_incomplete_datagram_is_freed_after_the_timeout() -> None:
    clock = Clock()
    r = Reassembler(timeout=15, clock=clock)
    a, b, c = pieces(DATA, 1480)
    feed(r, [a, c])
    assert len(r) == 1 and r.bytes_held == 2 * FRAGMENT_OVERHEAD + len(a.data) + len(c.data)
    clock.now += 14.9
    assert r.expire() == 0 and len(r) == 1
    clock.now += 0.1
    assert r.add("k", "s", b) is None  # too late: the old fragments are gone first
    assert r.dropped == {"timeout": 1}
    assert len(r) == 1 and r.bytes_held == FRAGMENT_OVERHEAD + len(b.data)
    clock.now += 15
    assert r.expire() == 1 and len(r) == 0 and r.bytes_held == 0


def test_one_source_holds_at_most_its_share_and_evicts_its_own_oldest() -> None:
    r = Reassembler(max_per_source=3)
    first = pieces(DATA, 1480)[0]
    for ident in range(5):
        r.add(("vm1", ident), "vm1", first)
    r.add(("vm2", 0), "vm2", first)
    assert len(r) == 4 and r.dropped == {"evicted": 2}
    # vm1's oldest went; vm2's datagram is untouched and completes
    assert [r.add(("vm2", 0), "vm2", f) for f in pieces(DATA, 1480)[1:]][-1] is not None
    assert r.add(("vm1", 0), "vm1", pieces(DATA, 1480)[2]) is None  # 0 was evicted


def test_memory_is_bounded_in_datagrams_and_bytes() -> None:
    r = Reassembler(max_datagrams=10, max_per_source=100, max_bytes=200_000)
    chunk = b"y" * 8000
    for ident in range(100):
        r.add(ident, ident % 7, Fragment(0, True, chunk))
        assert len(r) <= 10 and r.bytes_held <= 200_000
    assert r.dropped["evicted"] == 90
    # one datagram larger than the byte budget allows evicts the others, never itself...
    r = Reassembler(max_bytes=IP_MAX + FRAGMENT_OVERHEAD)
    r.add("other", "s", Fragment(0, True, b"z" * 8))
    big = pieces(bytes(IP_MAX - 20), 65464)
    assert r.add("big", "s", big[0]) is None and len(r) == 1  # "other" evicted
    # ...unless it cannot fit at all: many tiny fragments cost their overhead too
    r = Reassembler(max_bytes=IP_MAX + FRAGMENT_OVERHEAD)
    results = [r.add("tiny", "s", f) for f in pieces(bytes(16000), 8)]
    assert results == [None] * len(results) and r.bytes_held <= r.max_bytes
    assert r.dropped["evicted"] >= 1
    with pytest.raises(ValueError):
        Reassembler(max_bytes=1000)


def test_an_unfragmented_datagram_passes_straight_through() -> None:
    r = Reassembler()
    assert r.add("k", "s", Fragment(0, False, b"abc"), size=23) == Reassembled(b"abc", 23)
    assert len(r) == 0


@pytest.mark.parametrize("max_size,sizes", [
    (1500, [1480, 1480, 112]),
    (1450, [1424, 1424, 224]),
    (3092, [3072]),  # fits: one unfragmented datagram
    (30, [48] * 64),  # never below RFC 791's 68-byte datagram: 48 data bytes
])
def test_fragment_cuts_in_eight_octet_units_to_the_size(max_size: int, sizes: list[int]) -> None:
    frags = fragment(DATA, max_size)
    assert [len(f.data) for f in frags] == sizes
    assert [f.more for f in frags] == [True] * (len(sizes) - 1) + [False]
    assert all(f.offset % 8 == 0 for f in frags)
    assert b"".join(f.data for f in frags) == DATA
    r = Reassembler()
    assert feed(r, frags)[-1].payload == DATA
