"""Process helpers for the lab: run commands, and stop processes safely by PID.

Everything here stops processes only by a PID this library recorded, and checks
the PID still names the same process (start time or command line) before sending
a signal, because a PID from a stale file may by now belong to someone else.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


class CommandError(RuntimeError):
    """A command exited non-zero; the message carries its output for the test log."""

    def __init__(self, cmd: Sequence[str], returncode: int, stdout: str, stderr: str):
        self.cmd = list(cmd)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(
            f"command failed ({returncode}): {' '.join(self.cmd)}\n"
            f"stdout: {stdout.strip()[-2000:]}\nstderr: {stderr.strip()[-2000:]}"
        )


def run(
    cmd: Sequence[str],
    *,
    check: bool = True,
    timeout: float = 30.0,
    input: str | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion and capture its text output."""
    full_env = None if env is None else {**os.environ, **env}
    proc = subprocess.run(
        list(cmd),
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
        env=full_env,
        stdin=None if input is not None else subprocess.DEVNULL,
    )
    if check and proc.returncode != 0:
        raise CommandError(cmd, proc.returncode, proc.stdout, proc.stderr)
    return proc


def start_time(pid: int) -> int | None:
    """The kernel's start time of a process (clock ticks since boot), None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])


def cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def is_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def write_pidfile(path: Path, pid: int) -> None:
    """Record "PID STARTTIME" so a later cleanup can tell a reused PID from ours."""
    path.write_text(f"{pid} {start_time(pid) or 0}\n")


def read_pidfile(path: Path) -> tuple[int, int | None] | None:
    """(pid, start time or None) from a pidfile written by us or by OVS (PID only)."""
    try:
        parts = path.read_text().split()
    except OSError:
        return None
    if not parts or not parts[0].isdigit():
        return None
    started = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    return int(parts[0]), started


def same_process(pid: int, started: int | None = None, cmd_contains: str | None = None) -> bool:
    """Whether `pid` still is the process we recorded (by start time and/or command line)."""
    if not is_alive(pid):
        return False
    if started is not None and start_time(pid) != started:
        return False
    return cmd_contains is None or cmd_contains in cmdline(pid)


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_alive(pid):
            return True
        time.sleep(0.02)
    return not is_alive(pid)


def terminate(pid: int, timeout: float = 5.0) -> bool:
    """SIGTERM, then SIGKILL after `timeout`. Returns True when the process is gone.

    The caller must have verified the PID (see same_process)."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        if wait_gone(pid, wait):
            return True
    return False


def wait_for(predicate, timeout: float, interval: float = 0.05, what: str = "condition"):
    """Poll `predicate` until it returns something truthy; raise TimeoutError otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)
