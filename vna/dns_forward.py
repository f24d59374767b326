"""Forwarding DNS queries the edge does not answer itself to upstream resolvers.

The agent's worker thread must never wait on the network, so a query is handed to a
small pool of resolver threads.  Each sends it over UDP from the vna process itself (its
own network namespace and routing, not through Open vSwitch), waits at most `timeout`
per upstream, tries the next upstream on silence, and calls `done` with the upstream's
answer (the wire bytes, the client's query id restored) or None when none answered.
`done` runs on a resolver thread: it must only hand the answer back (vna.agent queues it
for the worker, which owns the switch connection).

A query goes out with a fresh random id and only an answer from the upstream's address
and port with that id and the same question is accepted, so another host cannot inject
answers by guessing the VM's id.  At most `max_in_flight` queries wait at once; beyond
that `submit` refuses (the caller answers SERVFAIL at once): a VM flooding names for the
upstream costs bounded threads and memory.
"""

from __future__ import annotations

import logging
import secrets
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import dns.exception
import dns.message

log = logging.getLogger("vna.dns")

Upstream = tuple[str, int]  # (IPv4 address, UDP port)
Done = Callable[[bytes | None], None]


class Forwarder:
    def __init__(self, workers: int = 4, timeout: float = 2.0, max_in_flight: int = 64) -> None:
        self.timeout = timeout
        self.max_in_flight = max_in_flight
        self._workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._in_flight = 0
        self.forwarded = 0
        self.answered = 0
        self.failed = 0
        self.refused = 0

    def submit(self, query_wire: bytes, upstreams: Sequence[Upstream], done: Done) -> bool:
        """Start forwarding; False (nothing started) when too many are in flight."""
        with self._lock:
            if self._in_flight >= self.max_in_flight:
                self.refused += 1
                return False
            self._in_flight += 1
            self.forwarded += 1
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="vna-dns")
            pool = self._pool
        pool.submit(self._run, query_wire, tuple(upstreams), done)
        return True

    def _run(self, query_wire: bytes, upstreams: tuple[Upstream, ...], done: Done) -> None:
        answer = None
        try:
            for upstream in upstreams:
                answer = self.ask(query_wire, upstream)
                if answer is not None:
                    break
        except Exception:  # never lose the slot or the client's answer
            log.exception("forwarding a DNS query failed")
            answer = None
        finally:
            with self._lock:
                self._in_flight -= 1
                if answer is None:
                    self.failed += 1
                else:
                    self.answered += 1
        done(answer)

    def ask(self, query_wire: bytes, upstream: Upstream) -> bytes | None:
        """One upstream's answer to the query (client id restored), or None."""
        client_id = query_wire[:2]
        query_id = secrets.randbits(16)
        query = struct.pack("!H", query_id) + query_wire[2:]
        sent = dns.message.from_wire(query)
        deadline = time.monotonic() + self.timeout
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.sendto(query, upstream)
            except OSError as exc:
                log.info("DNS upstream %s:%d unreachable: %s", *upstream, exc)
                return None
            while (left := deadline - time.monotonic()) > 0:
                sock.settimeout(left)
                try:
                    data, source = sock.recvfrom(65535)
                except (TimeoutError, OSError):
                    return None
                if source != upstream or len(data) < 12 or data[:2] != query[:2]:
                    continue
                try:
                    if not sent.is_response(dns.message.from_wire(data)):
                        continue
                except dns.exception.DNSException:
                    continue
                return client_id + data[2:]
        return None

    def shutdown(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
