"""Traffic probes run inside VM namespaces: ping (parsed) and a checksummed TCP transfer.

The transfer uses small `python3 -c` programs instead of nc/iperf3 so it needs nothing
beyond Python and works offline; both ends hash what they saw with sha256.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from dataclasses import dataclass, field

from lab.netns import Netns

_REPLY = re.compile(r"icmp_seq=(\d+) ttl=(\d+) time=([\d.]+) ms(.*DUP!)?")
_SUMMARY = re.compile(r"(\d+) packets transmitted, (\d+) (?:packets )?received")


def ping_argv(
    dst: str,
    count: int,
    *,
    interval: float = 0.2,
    wait: float = 1.0,
    deadline: float | None = None,
    size: int | None = None,
    ttl: int | None = None,
) -> list[str]:
    argv = ["ping", "-n", "-c", str(count), "-i", f"{interval:g}", "-W", f"{wait:g}"]
    if deadline:
        argv += ["-w", f"{deadline:g}"]
    if size is not None:
        argv += ["-s", str(size)]
    if ttl is not None:
        argv += ["-t", str(ttl)]
    return [*argv, dst]


@dataclass
class PingResult:
    transmitted: int
    received: int
    ttls: list[int] = field(default_factory=list)  # of each (non-duplicate) reply
    rtts_ms: list[float] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)
    duplicates: int = 0
    returncode: int = 0
    output: str = ""

    @property
    def ok(self) -> bool:
        """Every echo request got its reply."""
        return self.transmitted > 0 and self.received == self.transmitted

    @property
    def loss(self) -> float:
        return 1.0 if not self.transmitted else 1 - self.received / self.transmitted

    @classmethod
    def parse(cls, output: str, returncode: int = 0) -> PingResult:
        result = cls(transmitted=0, received=0, returncode=returncode, output=output)
        for seq, ttl, rtt, dup in _REPLY.findall(output):
            if dup:
                result.duplicates += 1
                continue
            result.seqs.append(int(seq))
            result.ttls.append(int(ttl))
            result.rtts_ms.append(float(rtt))
        summary = _SUMMARY.search(output)
        if summary:
            result.transmitted, result.received = int(summary[1]), int(summary[2])
        return result


class BackgroundPing:
    """A ping running in the background (see Vm.start_ping)."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.started = time.monotonic()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def result(self, timeout: float | None = None) -> PingResult:
        """Wait for ping to finish its count and parse what it printed."""
        out, _ = self.proc.communicate(timeout=timeout)
        return PingResult.parse(out or "", self.proc.returncode)

    def stop(self) -> PingResult:
        """End early; SIGINT makes ping print its summary."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.result(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.result(timeout=5)


# Receiver: listen, say "ready", hash everything until EOF, report, then close so the
# sender knows every byte arrived.
_RECEIVER = """
import hashlib, socket, sys
port, timeout = int(sys.argv[1]), float(sys.argv[2])
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", port))
srv.listen(1)
srv.settimeout(timeout)
print("ready", flush=True)
conn, _ = srv.accept()
conn.settimeout(timeout)
digest, total = hashlib.sha256(), 0
while chunk := conn.recv(1 << 16):
    digest.update(chunk)
    total += len(chunk)
print(total, digest.hexdigest(), flush=True)
conn.close()
"""

# Sender: connect (retrying briefly while flows/ARP settle), stream random bytes while
# hashing them, half-close, and wait for the receiver's close.
_SENDER = """
import hashlib, os, socket, sys, time
host, port, total, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
deadline = time.monotonic() + timeout
while True:
    try:
        conn = socket.create_connection((host, port), timeout=2)
        break
    except OSError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.2)
conn.settimeout(timeout)
digest, sent, start = hashlib.sha256(), 0, time.monotonic()
while sent < total:
    chunk = os.urandom(min(1 << 16, total - sent))
    conn.sendall(chunk)
    digest.update(chunk)
    sent += len(chunk)
conn.shutdown(socket.SHUT_WR)
conn.recv(1)
print(sent, digest.hexdigest(), time.monotonic() - start, flush=True)
"""


@dataclass
class TransferResult:
    sent: int
    received: int
    sha_sent: str
    sha_received: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.sent == self.received and self.sha_sent == self.sha_received

    @property
    def mbit_per_s(self) -> float:
        return self.received * 8 / 1e6 / self.seconds if self.seconds > 0 else 0.0


def run_transfer(
    src: Netns,
    dst: Netns,
    dst_ip: str,
    nbytes: int,
    *,
    port: int = 5001,
    timeout: float = 60.0,
    python: str = "python3",
) -> TransferResult:
    receiver = dst.popen(
        python,
        "-c",
        _RECEIVER,
        str(port),
        str(timeout),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        if receiver.stdout.readline().strip() != "ready":
            raise RuntimeError(f"receiver in {dst.name} failed: {receiver.stderr.read()}")
        sender = src.run(
            python,
            "-c",
            _SENDER,
            dst_ip,
            str(port),
            str(nbytes),
            str(timeout),
            check=True,
            timeout=timeout + 10,
        )
        r_out, r_err = receiver.communicate(timeout=timeout)
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait()
    sent, sha_sent, seconds = sender.stdout.split()
    if not r_out.strip():
        raise RuntimeError(f"receiver in {dst.name} reported nothing: {r_err}")
    received, sha_received = r_out.split()
    return TransferResult(int(sent), int(received), sha_sent, sha_received, float(seconds))
