"""tcpdump inside a namespace, around a block of traffic."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from lab.netns import Netns

if TYPE_CHECKING:
    from lab.cloud import Cloud


class Capture:
    def __init__(self) -> None:
        self.lines: list[str] = []


@contextmanager
def capture(netns: Netns, iface: str, bpf: str = "",
            direction: str | None = None) -> Iterator[Capture]:
    """Packets seen on `iface` while the block runs, one tcpdump line each (with MACs);
    direction "in" or "out" keeps only the packets received or sent there."""
    result = Capture()
    argv = ["tcpdump", "-l", "-nn", "-e", "-i", iface, "-U"]
    if direction:
        argv += ["-Q", direction]
    argv += bpf.split() if bpf else []
    proc = netns.popen(*argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # tcpdump reports "listening on" on stderr once the socket is open.
        assert proc.stderr is not None
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if "listening on" in line or not line:
                break
        yield result
        time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
        result.lines = [line for line in out.splitlines() if line.strip()]


def underlay_packets(cloud: Cloud, host: str, traffic: Callable[[], object]) -> list[str]:
    """tcpdump lines seen on `host`'s underlay port while `traffic()` runs."""
    hv = cloud.hosts[host].hv
    with capture(hv.netns, hv.underlay_port or "ul0", "not ether proto 0x88b5") as seen:
        traffic()
    return seen.lines
