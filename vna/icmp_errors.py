"""ICMP errors the distributed router sends on the source datapath: time exceeded (a
routed packet's TTL runs out at a router of its path) and destination unreachable (no
route, or no such host on a connected network).

The switch cannot build these (no action wraps a packet in a new IP and ICMP header), so
the flows hand the packet to the agent: an invalid-TTL packet-in of a ROUTE entry's
`dec_ttl`, or a punt (vna.features.routing).  This module holds what every such answer
shares:

* `answerable`: RFC 1812 4.3.2.7 - no error about an ICMP error, a fragment other than
  the first, or a packet from/to a broadcast, multicast, unspecified or loopback address.
* `error_frame`: the answer, built with os_ken.lib.packet - from the router's MAC and
  address to the VM, quoting the offending datagram's IP header and as much of its data
  as keeps the error within 576 bytes (RFC 1812 4.3.2.3; RFC 792's minimum is the header
  and 8 bytes).
* `LIMITER`: a token bucket per (datapath, ingress port) - RATE errors/s with a burst of
  BURST - since invalid-TTL packet-ins pass no meter: a VM sending a flood with TTL 1
  costs the agent one cheap check per packet and gets at most RATE answers per second.
* `STATS`: sent per type and rate-limited counts, exported by vna.metrics.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from os_ken.lib.packet import ethernet, icmp, ipv4, packet

from vna.pipeline import ETH_IPV4, IP_PROTO_ICMP

TIME_EXCEEDED = icmp.ICMP_TIME_EXCEEDED  # 11, code 0: TTL exceeded in transit
DEST_UNREACH = icmp.ICMP_DEST_UNREACH  # 3
CODE_TTL_EXCEEDED = icmp.ICMP_TTL_EXPIRED_CODE  # 0
CODE_NET_UNREACH = 0
CODE_HOST_UNREACH = 1
# ICMP types that are errors (RFC 1812 4.3.2.7: never answered with an error).
ERROR_TYPES = frozenset({3, 4, 5, 11, 12})
MAX_ERROR_BYTES = 576  # RFC 1812 4.3.2.3: the whole error datagram
ERROR_TTL = 64

RATE = 100.0  # errors per second per ingress port
BURST = 100.0
TYPE_NAMES = {(TIME_EXCEEDED, CODE_TTL_EXCEEDED): "time_exceeded",
              (DEST_UNREACH, CODE_NET_UNREACH): "net_unreachable",
              (DEST_UNREACH, CODE_HOST_UNREACH): "host_unreachable"}


@dataclass
class IcmpErrorStats:
    sent: Counter[str] = field(default_factory=Counter)  # type name -> errors sent
    limited: int = 0  # errors not sent: over the port's rate


STATS = IcmpErrorStats()


class RateLimiter:
    """Token buckets keyed by (datapath, ingress port): `allow` takes one token."""

    def __init__(self, rate: float = RATE, burst: float = BURST,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = 4096) -> None:
        self.rate, self.burst, self.clock, self.max_keys = rate, burst, clock, max_keys
        self._buckets: dict[object, tuple[float, float]] = {}  # key -> (tokens, time)
        self._lock = threading.Lock()

    def allow(self, key: object) -> bool:
        now = self.clock()
        with self._lock:
            tokens, then = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - then) * self.rate)
            if len(self._buckets) >= self.max_keys and key not in self._buckets:
                # Bounded: full buckets carry no state worth keeping.
                self._buckets = {k: v for k, v in self._buckets.items()
                                 if v[0] + (now - v[1]) * self.rate < self.burst}
            ok = tokens >= 1.0
            self._buckets[key] = (tokens - 1.0 if ok else tokens, now)
            return ok


LIMITER = RateLimiter()


@dataclass(frozen=True)
class Offender:
    """The parsed packet an error answers: its Ethernet and IPv4 headers and the IP
    datagram's bytes (header and data, without Ethernet padding)."""

    eth: ethernet.ethernet
    ip: ipv4.ipv4
    datagram: bytes


def parse(frame: bytes) -> Offender | None:
    """The IPv4 packet in `frame`, or None if it is not one (or is truncated)."""
    try:
        eth, _, rest = ethernet.ethernet.parser(frame)
        if eth.ethertype != ETH_IPV4:
            return None
        ip, _, data = ipv4.ipv4.parser(bytes(rest))
    except Exception:
        return None
    header = ip.header_length * 4
    if header < 20 or ip.total_length < header or len(rest) < header:
        return None
    return Offender(eth, ip, bytes(rest[: min(ip.total_length, len(rest))]))


def _special(address: str) -> bool:
    a = ipaddress.IPv4Address(address)
    return (a.is_multicast or a.is_unspecified or a.is_loopback
            or a == ipaddress.IPv4Address("255.255.255.255"))


def answerable(offender: Offender) -> bool:
    """RFC 1812 4.3.2.7: whether a router may send an ICMP error about this packet."""
    ip = offender.ip
    if ip.offset != 0 or _special(ip.src) or _special(ip.dst):
        return False
    if ip.proto == IP_PROTO_ICMP:
        payload = offender.datagram[ip.header_length * 4:]
        if not payload or payload[0] in ERROR_TYPES:
            return False
    return True


def error_frame(offender: Offender, router_mac: str, vm_mac: str, router_ip: str,
                type_: int, code: int) -> bytes:
    """The ICMP error from (router_mac, router_ip) to the offender's source at vm_mac."""
    quoted = offender.datagram[: MAX_ERROR_BYTES - 20 - 8]
    body: icmp._ICMPv4Payload
    if type_ == TIME_EXCEEDED:
        body = icmp.TimeExceeded(data=quoted)
    else:
        body = icmp.dest_unreach(data=quoted)
    frame = packet.Packet()
    frame.add_protocol(ethernet.ethernet(dst=vm_mac, src=router_mac, ethertype=ETH_IPV4))
    frame.add_protocol(ipv4.ipv4(src=router_ip, dst=offender.ip.src, proto=IP_PROTO_ICMP,
                                 ttl=ERROR_TTL))
    frame.add_protocol(icmp.icmp(type_=type_, code=code, csum=0, data=body))
    frame.serialize()
    return bytes(frame.data)


def limited(key: object, type_: int, code: int) -> bool:
    """Take a token for an error to send; count it as sent or as limited."""
    if not LIMITER.allow(key):
        STATS.limited += 1
        return True
    STATS.sent[TYPE_NAMES.get((type_, code), f"{type_}/{code}")] += 1
    return False
