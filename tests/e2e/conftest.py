"""Fixtures for end-to-end tests: real Open vSwitch instances, namespaces and packets.

These tests need root and Open vSwitch; when either is missing they fail (not skip),
so a broken machine cannot pass as green. `scripts/setup.sh` prepares a machine.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import Lab, cleanup_orphans
from lab.ovs import SCHEMA

E2E_DIR = Path(__file__).parent
REQUIRED_PROGRAMS = (
    "ip",
    "ovsdb-server",
    "ovs-vswitchd",
    "ovsdb-tool",
    "ovs-vsctl",
    "ovs-ofctl",
    "ovs-appctl",
    "ethtool",
    "ping",
    "nc",  # netcat-openbsd: lab.traffic
)
# Logs of a failed test's lab are kept here (the lab itself is always removed).
FAILED_LOGS_DIR = Path(os.environ.get("VNET_E2E_LOGS", "/tmp/vnet-e2e-logs"))
_failed = pytest.StashKey[bool]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "e2e: end-to-end tests with real Open vSwitch, processes and packets"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # This hook sees every collected test, not only this directory's.
    for item in items:
        if E2E_DIR in Path(item.path).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.failed:
        item.stash[_failed] = True
    return report


def _missing_requirements() -> list[str]:
    problems = []
    if os.geteuid() != 0:
        problems.append("not running as root (namespaces and OVS need it)")
    # OVS daemons live in /usr/sbin, which a non-login PATH may lack.
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    missing = [p for p in REQUIRED_PROGRAMS if shutil.which(p, path=path) is None]
    if missing:
        problems.append(f"programs not found: {', '.join(missing)}")
    if not SCHEMA.exists():
        problems.append(f"OVS schema {SCHEMA} not found")
    return problems


@pytest.fixture(scope="session", autouse=True)
def e2e_environment() -> None:
    """Fail every e2e test with one clear message when the machine cannot run them."""
    problems = _missing_requirements()
    if problems:
        pytest.fail(
            "e2e tests cannot run: " + "; ".join(problems) + ". Run scripts/setup.sh as root.",
            pytrace=False,
        )
    if "/usr/sbin" not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] += os.pathsep + "/usr/sbin" + os.pathsep + "/sbin"
    # Labs of earlier runs that crashed (their owning process is gone).
    cleanup_orphans()


@pytest.fixture
def lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    """A fresh lab with a unique prefix; everything in it is removed after the test."""
    the_lab = Lab()
    try:
        yield the_lab
    finally:
        if request.node.stash.get(_failed, False):
            dest = FAILED_LOGS_DIR / f"{request.node.name}-{the_lab.prefix.rstrip('-')}"
            the_lab.collect_logs(dest)
            print(f"lab logs kept in {dest}")
        the_lab.close()
