"""A datapath's is_connected follows its vna and its switch, with real processes: false
within 5 s of the vna's kill -9 or of ovs-vswitchd's, true again once they are back; the
vna's /metrics parse as Prometheus text."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lab import Lab
from lab.cloud import Cloud
from tests.e2e.vna_probe import vna_metrics_text

DEADLINE = 5.0  # seconds from the fault to is_connected=false in the API


@pytest.fixture
def cloud(e2e_environment: None) -> Iterator[Cloud]:
    with Lab() as lab:
        c = Cloud(lab).start()
        c.add_host("h1")
        c.add_host("h2")
        for host in c.hosts.values():
            wait_connected(c, host.datapath_uuid, True, within=15)
        yield c


def connected(c: Cloud, datapath: str) -> bool:
    assert c.api is not None
    return bool(c.api.get(f"datapaths/{datapath}")["is_connected"])


def wait_connected(c: Cloud, datapath: str, value: bool, within: float) -> float:
    """Seconds until the API shows is_connected == value; fails after `within`."""
    started = time.monotonic()
    while connected(c, datapath) != value:
        assert time.monotonic() - started < within, \
            f"{datapath} is_connected not {value} within {within}s"
        time.sleep(0.1)
    return time.monotonic() - started


def test_vna_killed_marks_its_datapath_disconnected_then_connected_again(cloud: Cloud) -> None:
    assert cloud.api is not None
    h1 = cloud.hosts["h1"]
    assert h1.vna is not None
    h1.vna.kill9()
    elapsed = wait_connected(cloud, "dp-h1", False, within=DEADLINE)
    print(f"dp-h1 disconnected {elapsed:.1f}s after its vna's kill -9")
    assert connected(cloud, "dp-h2")
    health = cloud.api.get("health")
    assert health["status"] == "degraded"
    assert health["disconnected_datapaths"] == ["dp-h1"]
    cloud.start_vna(h1)
    wait_connected(cloud, "dp-h1", True, within=15)
    assert cloud.api.get("health")["status"] == "ok"


def test_switch_lost_marks_the_datapath_disconnected_then_connected_again(
        cloud: Cloud) -> None:
    ovs = cloud.hosts["h1"].hv.ovs
    pid = ovs.pid("ovs-vswitchd")
    assert pid is not None
    os.kill(pid, signal.SIGKILL)  # our lab's own ovs-vswitchd, by its pid
    elapsed = wait_connected(cloud, "dp-h1", False, within=DEADLINE)
    print(f"dp-h1 disconnected {elapsed:.1f}s after ovs-vswitchd's kill -9")
    assert connected(cloud, "dp-h2")
    ovs.restart_vswitchd()
    wait_connected(cloud, "dp-h1", True, within=20)


def test_vna_metrics_parse_with_help_type_and_zero_counters(cloud: Cloud) -> None:
    families = {f.name: f for f in
                text_string_to_metric_families(vna_metrics_text(cloud, "h1"))}
    for family in families.values():
        assert family.documentation, f"{family.name} has no HELP"
        assert family.type in ("counter", "gauge", "histogram"), family.name
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in families.values() for s in f.samples}
    node = ("node_id", "vnah1")
    assert samples[("vnet_vna_datapath_connected", (node,))] == 1
    # Counters exist before anything happened, at 0, for every known label value.
    assert samples[("vnet_vna_sync_failures_total", (node,))] == 0
    assert samples[("vnet_vna_punts_dropped_total", (("cause", "handler_error"), node))] == 0
    assert samples[("vnet_vna_packet_ins_total", (node, ("reason", "invalid_ttl")))] == 0
    assert families["vnet_vna_flows"].type == "gauge"
    # Convergence: the datapaths' is_connected changes reached h1's switch (they are in
    # every slice) after it connected, so they were timed.
    convergence = families["vnet_vna_convergence_seconds"]
    assert convergence.type == "histogram"
    counts = {s.labels["kind"]: s.value for s in convergence.samples
              if s.name == "vnet_vna_convergence_seconds_count"}
    assert counts["changes"] >= 1 and "snapshot" in counts
