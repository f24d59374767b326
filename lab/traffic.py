"""TCP and UDP probes between VM namespaces, with netcat-openbsd (`nc`).

For firewall tests a probe must tell *why* it failed: a dropped SYN times out, while a
port nobody listens on answers with a reset ("refused"). `tcp_connect` reports which.

- `TcpListener`: accepts any number of connections, concurrent ones too.
- `tcp_connect`: one connection attempt (`nc -z`), the outcome parsed.
- `UdpEcho` + `udp_request`: a datagram and its echo (Python: nc -u cannot stop at
  the first answer) (the request arrived, and the reply
  came back through the firewall); the echo server logs each request's payload.
- `TcpWho` + `tcp_who`: which source address a server saw a client come from (NAT).
- `TcpStream`: one long-lived TCP connection whose client is fed line by line, the
  server writing what arrives to a file: "is the next data of an established connection
  still delivered?"

Every process is started in a namespace by `Netns.popen` (its pid is the program's own)
and stopped by that pid; the namespace's deletion stops any it left.
"""

from __future__ import annotations

import math
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from lab.netns import Netns
from lab.proc import terminate


def _wait_listening(netns: Netns, port: int, proto: str, timeout: float = 5.0) -> None:
    flag = "-tln" if proto == "tcp" else "-uln"
    deadline = time.monotonic() + timeout
    while True:
        out = netns.run("ss", "-H", flag, f"sport = :{port}", check=False).stdout
        if out.strip():
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing listens on {proto}/{port} in {netns.name}")
        time.sleep(0.05)


class _Process:
    """A program started in a namespace, stopped by its pid."""

    proc: subprocess.Popen

    def stop(self) -> None:
        if self.proc.poll() is None:
            terminate(self.proc.pid, timeout=3.0)
        try:
            self.proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=3)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class _LoggingServer(_Process):
    """A Python server `script` on `port` in `netns`, logging each client to `log`
    (emptied first); ready once the port listens."""

    script: str
    proto: str

    def __init__(self, netns: Netns, port: int, log: Path, python: str = sys.executable) -> None:
        self.netns, self.port, self.log = netns, port, log
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_bytes(b"")
        self.proc = netns.popen(python, "-c", self.script, str(port), str(log),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_listening(netns, port, self.proto)


# The TCP listener: accept and close, with a long accept queue. (`nc -lk` listens with a
# backlog of 1 and serves one connection at a time: concurrent probes to one port would
# find the queue full, their SYNs dropped, and look exactly like a firewall's drop.)
_TCP_LISTENER = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(512)
while True:
    s.accept()[0].close()
"""


class TcpListener(_Process):
    """Accepts (and closes) every TCP connection to `port` in `netns` until stopped."""

    def __init__(self, netns: Netns, port: int, python: str = sys.executable) -> None:
        self.netns, self.port = netns, port
        self.proc = netns.popen(python, "-c", _TCP_LISTENER, str(port),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_listening(netns, port, "tcp")


@dataclass
class ConnectResult:
    """One TCP connection attempt: `ok`, or refused (a reset came back), or timed out
    (nothing came back: dropped on the way, or the SYN-ACK dropped on its way back)."""

    ok: bool
    refused: bool
    timed_out: bool
    seconds: float
    output: str

    def __bool__(self) -> bool:
        return self.ok


def tcp_connect(netns: Netns, dst: str, port: int, timeout: float = 1.0) -> ConnectResult:
    """Open (and at once close) one TCP connection to dst:port from `netns`, giving up
    after `timeout` s (fractions too: nc's own -w counts whole seconds)."""
    started = time.monotonic()
    wait = math.ceil(timeout)
    # nc's own -w when it is whole (nc then says "timed out"), else `timeout` stops it
    limit = f"{timeout + 0.5:g}" if wait == timeout else f"{timeout:g}"
    proc = netns.run("timeout", limit, "nc", "-znv", "-w", str(wait), dst, str(port),
                     check=False, timeout=timeout + 10)
    seconds = time.monotonic() - started
    out = (proc.stdout + proc.stderr).strip() or f"no answer within {timeout:g}s"
    ok = proc.returncode == 0
    refused = not ok and "refused" in out.lower()
    return ConnectResult(ok, refused, not ok and not refused, seconds, out)


# The UDP echo server: answers each datagram with "echo:" + payload and appends the
# payload to a log file, so a test tells "request lost" from "reply lost".
_UDP_ECHO = """
import socket, sys
port, log = int(sys.argv[1]), sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", port))
with open(log, "ab", buffering=0) as f:
    while True:
        data, peer = s.recvfrom(65535)
        f.write(data.rstrip(b"\\n") + b" from " + peer[0].encode() + b"\\n")
        s.sendto(b"echo:" + data, peer)
"""


class UdpEcho(_LoggingServer):
    """A UDP echo server on `port` in `netns`, logging every request to `log`."""

    script, proto = _UDP_ECHO, "udp"

    def received(self, token: str) -> bool:
        return token in self.log.read_text()


# The UDP client: one datagram, then wait for its echo (nc -u would wait out its whole
# -w idle time even after the answer came).
_UDP_REQUEST = """
import socket, sys
dst, port, token, timeout = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(timeout)
s.sendto(token.encode() + b"\\n", (dst, port))
try:
    print(s.recv(65535).decode(errors="replace").strip())
except OSError as exc:  # timeout, or ICMP port unreachable (ECONNREFUSED)
    print(f"no reply: {exc!r}")
"""


@dataclass
class UdpResult:
    """One datagram and its echo: `replied` when the echo came back."""

    replied: bool
    output: str

    def __bool__(self) -> bool:
        return self.replied


def udp_request(netns: Netns, dst: str, port: int, token: str, timeout: float = 1.0,
                python: str = sys.executable) -> UdpResult:
    """Send `token` to dst:port over UDP and wait up to `timeout` s for its echo."""
    proc = netns.run(python, "-c", _UDP_REQUEST, dst, str(port), token, f"{timeout:g}",
                     check=False, timeout=timeout + 10)
    out = (proc.stdout + proc.stderr).strip()
    return UdpResult(out == f"echo:{token}", out)


class TcpStream:
    """One long-lived TCP connection from `src` to `dst_ip:port` in `dst` (as the
    ct_firewall recipe's fifo-fed nc): `send()` writes a line on the open connection,
    `delivered()` says whether the server has received it."""

    def __init__(self, src: Netns, dst: Netns, dst_ip: str, port: int, out: Path,
                 timeout: float = 5.0) -> None:
        self.out = out
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(b"")
        self._out_file = out.open("wb")
        self.server = dst.popen("nc", "-ln", str(port), stdout=self._out_file,
                                stderr=subprocess.DEVNULL)
        self.client: subprocess.Popen | None = None
        try:
            _wait_listening(dst, port, "tcp")
            self.client = src.popen("nc", "-n", dst_ip, str(port), stdin=subprocess.PIPE,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            # Established when the server (it listens for one connection) has accepted.
            deadline = time.monotonic() + timeout
            while dst.run("ss", "-Htn", "state", "established", f"sport = :{port}",
                          check=False).stdout.strip() == "":
                if self.client.poll() is not None or time.monotonic() > deadline:
                    err = self.client.stderr.read() if self.client.stderr else ""
                    raise RuntimeError(f"{src.name} -> {dst_ip}:{port}: no connection {err}")
                time.sleep(0.05)
        except BaseException:
            self.close()
            raise

    def send(self, token: str) -> None:
        assert self.client is not None and self.client.stdin is not None
        self.client.stdin.write(f"{token}\n".encode())
        self.client.stdin.flush()

    def delivered(self, token: str) -> bool:
        return token in self.out.read_text()

    def wait_delivered(self, token: str, timeout: float = 2.0) -> bool:
        deadline = time.monotonic() + timeout
        while not self.delivered(token):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def send_and_check(self, token: str, timeout: float = 2.0) -> bool:
        """Send `token`; True when it arrives within `timeout` s."""
        self.send(token)
        return self.wait_delivered(token, timeout)

    def close(self) -> None:
        for proc in (self.client, self.server):
            if proc is not None and proc.poll() is None:
                terminate(proc.pid, timeout=3.0)
            if proc is not None:
                try:
                    proc.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=3)
        if self.client is not None and self.client.stdin is not None:
            try:
                self.client.stdin.close()
            except OSError:
                pass
        self._out_file.close()

    def __enter__(self) -> TcpStream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# The "who is calling" server: answers each connection with the peer's address as it
# arrived (after any NAT on the way) and logs it, so both ends of a translated
# connection can be checked: the client gets the answer back only if the reply was
# translated back to the address it connected to.
_TCP_WHO = """
import socket, sys
port, log = int(sys.argv[1]), sys.argv[2]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", port))
s.listen(512)
with open(log, "a", buffering=1) as f:
    while True:
        c, peer = s.accept()
        f.write(f"{peer[0]}:{peer[1]}\\n")
        try:
            c.sendall(f"you are {peer[0]}:{peer[1]}\\n".encode())
        except OSError:
            pass
        c.close()
"""


class TcpWho(_LoggingServer):
    """A TCP server on `port` in `netns` that tells each client the address it saw it
    come from ("you are A:P") and logs every peer to `log`."""

    script, proto = _TCP_WHO, "tcp"

    def peers(self) -> list[str]:
        """Every peer address seen so far (without the port), oldest first."""
        return [line.split(":")[0] for line in self.log.read_text().splitlines() if line]


_TCP_WHO_CLIENT = """
import socket, sys
dst, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
try:
    s = socket.create_connection((dst, port), timeout=timeout)
    data = b""
    while not data.endswith(b"\\n"):
        chunk = s.recv(256)
        if not chunk:
            break
        data += chunk
    print(data.decode(errors="replace").strip() or "closed without an answer")
except OSError as exc:
    print(f"failed: {exc!r}")
"""


@dataclass
class WhoResult:
    """One connection to a `TcpWho` server: `seen_as` is the client address the server
    saw (None when no answer came back)."""

    seen_as: str | None
    output: str

    def __bool__(self) -> bool:
        return self.seen_as is not None


def tcp_who(netns: Netns, dst: str, port: int, timeout: float = 2.0,
            python: str = sys.executable) -> WhoResult:
    """Connect from `netns` to a `TcpWho` server at dst:port; what address did it see?"""
    proc = netns.run(python, "-c", _TCP_WHO_CLIENT, dst, str(port), f"{timeout:g}",
                     check=False, timeout=timeout + 10)
    out = (proc.stdout + proc.stderr).strip()
    if out.startswith("you are "):
        return WhoResult(out.removeprefix("you are ").rsplit(":", 1)[0], out)
    return WhoResult(None, out)
