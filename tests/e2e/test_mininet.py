"""wakame-vnet on a mininet topology: 3 hypervisor switches, 2 VMs each, two networks
and a router; pingall must lose nothing.

Runs tools/mininet/run-sandboxed.sh, which keeps mininet (and its machine-wide
cleanup) inside private namespaces. Without mininet this fails, it does not skip.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RUNNER = REPO / "tools" / "mininet" / "run-sandboxed.sh"
SANDBOX_TIMEOUT = 90  # inside the sandbox; it ends the run before ours does
TEST_TIMEOUT = 115


def _mininet_missing() -> str | None:
    probe = subprocess.run(["/usr/bin/python3", "-c", "import mininet.net"],
                           capture_output=True, text=True)
    if probe.returncode != 0 or not Path("/usr/bin/mnexec").exists():
        return "mininet is not installed: apt-get install -y mininet (scripts/setup.sh)"
    return None


def _run_sandboxed(*args: str) -> tuple[int, str]:
    env = {**os.environ, "VNET_MN_TIMEOUT": str(SANDBOX_TIMEOUT)}
    # Own session: on our timeout we can SIGINT the whole run (mininet stops
    # cleanly on SIGINT) without touching pytest itself.
    proc = subprocess.Popen([str(RUNNER), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=TEST_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
        pytest.fail(f"mininet run exceeded {TEST_TIMEOUT}s:\n{out[-4000:]}")
    return proc.returncode, out


def test_pingall_three_switches_two_networks_and_router() -> None:
    missing = _mininet_missing()
    if missing:
        pytest.fail(missing, pytrace=False)

    rc, out = _run_sandboxed("--hypervisors", "3", "--vms", "2", "--networks", "2")

    assert rc == 0, f"run-sandboxed.sh exited {rc}:\n{out[-4000:]}"
    verdict = re.search(r"\*\*\* pingall: ([\d.]+)% dropped, (\d+) hosts, (\d+) switches", out)
    assert verdict, out[-4000:]
    assert verdict.groups() == ("0", "6", "3"), out[-4000:]
    # The sandbox is gone: its network namespace and work directory.
    sandbox = re.search(r"sandbox (vmn[0-9a-f]+), work directory (\S+)", out)
    assert sandbox, out[-4000:]
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert sandbox[1] not in namespaces
    assert not Path(sandbox[2]).exists()
