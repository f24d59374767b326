"""tcpdump inside a namespace, around a block of traffic."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

from vnet.lab.netns import Netns


class Capture:
    def __init__(self) -> None:
        self.lines: list[str] = []


@contextmanager
def capture(netns: Netns, iface: str, bpf: str = "") -> Iterator[Capture]:
    """Packets seen on `iface` while the block runs, one tcpdump line each (with MACs)."""
    result = Capture()
    argv = ["tcpdump", "-l", "-nn", "-e", "-i", iface, "-U"] + (bpf.split() if bpf else [])
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
