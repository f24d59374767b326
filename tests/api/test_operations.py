"""What an operator reads: /metrics of webapi and vnmgr in the Prometheus format, and
/health with the datapaths vnmgr marks disconnected when their agent stops reporting."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from vnet import models as m
from vnet.db import make_engine

from .support import Api, unique

Families = dict[str, Any]


def scrape(url: str) -> Families:
    """name -> family; every family must have HELP text and a TYPE."""
    response = requests.get(url, timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    for family in families.values():
        assert family.documentation, f"{family.name} has no HELP"
        assert family.type != "unknown", f"{family.name} has no TYPE"
    return families


def value(families: Families, family: str, sample: str, **labels: str) -> float | None:
    return next((s.value for s in families[family].samples
                 if s.name == sample and s.labels == labels), None)


def test_webapi_metrics_count_requests_by_route_endpoint(api: Api) -> None:
    url = api.services.webapi_url + "/metrics"
    before = scrape(url)
    assert before["vnet_webapi_requests"].type == "counter"
    assert before["vnet_webapi_request_seconds"].type == "histogram"
    assert before["vnet_webapi_vnmgr_failures"].type == "counter"
    # Every route's counters exist from the start, at 0 when unused.
    shown = {"endpoint": "networks_show", "method": "GET", "status": "4xx"}
    assert value(before, "vnet_webapi_requests", "vnet_webapi_requests_total",
                 endpoint="dns_records_delete", method="DELETE", status="5xx") == 0
    missing = unique("nw")
    assert api.get(f"/networks/{missing}").status_code == 404
    assert requests.get(api.services.webapi_url + f"/no/such/{missing}", timeout=5) \
        .status_code == 404
    after = scrape(url)
    # The route's name, never the raw path (one series per route, whatever the uuid).
    assert value(after, "vnet_webapi_requests", "vnet_webapi_requests_total", **shown) == \
        (value(before, "vnet_webapi_requests", "vnet_webapi_requests_total", **shown) or 0) + 1
    assert value(after, "vnet_webapi_request_seconds", "vnet_webapi_request_seconds_count",
                 **shown) >= 1
    assert value(after, "vnet_webapi_requests", "vnet_webapi_requests_total",
                 endpoint="unmatched", method="GET", status="4xx") >= 1
    labels = {tuple(sorted(s.labels)) for s in after["vnet_webapi_requests"].samples}
    assert labels == {("endpoint", "method", "status")}
    assert all(missing not in str(s.labels) for f in after.values() for s in f.samples)


def test_vnmgr_metrics(api: Api) -> None:
    api.create("security_groups", uuid=unique("sg"))
    families = scrape(f"http://127.0.0.1:{api.vnmgr.env['VNET_VNMGR_METRICS_PORT']}/metrics")
    for name in ("vnet_vnmgr_requests", "vnet_vnmgr_writes", "vnet_vnmgr_events_published",
                 "vnet_vnmgr_internal_errors", "vnet_vnmgr_slice_messages",
                 "vnet_vnmgr_events_pruned", "vnet_vnmgr_liveness_updates"):
        assert families[name].type == "counter", name
    # Counters present at 0: nothing failed, nothing pruned (far below events_keep).
    assert value(families, "vnet_vnmgr_internal_errors", "vnet_vnmgr_internal_errors_total") == 0
    assert value(families, "vnet_vnmgr_events_pruned", "vnet_vnmgr_events_pruned_total") == 0
    assert value(families, "vnet_vnmgr_writes", "vnet_vnmgr_writes_total") > 0
    latency = families["vnet_vnmgr_request_seconds"]
    assert latency.type == "histogram"
    assert value(families, "vnet_vnmgr_request_seconds", "vnet_vnmgr_request_seconds_count",
                 op="create") > 0
    assert value(families, "vnet_vnmgr_request_seconds", "vnet_vnmgr_request_seconds_count",
                 op="unknown") is not None


@pytest.fixture
def datapath(api: Api) -> Iterator[str]:
    """A datapath with no vna behind it."""
    uuid = unique("dp")
    api.create("datapaths", uuid=uuid, dpid=f"0x{secrets.randbits(48):016x}",
               node_id=f"node-{uuid}")
    yield uuid
    api.delete(f"/datapaths/{uuid}")


class FakeAgent:
    """Reports status for `datapath` as a vna does (every `interval` s) while running."""

    def __init__(self, api: Api, datapath: str, interval: float = 1.0) -> None:
        self.rpc = api.services.rpc(2000, role="agent")
        self.status = {"node_id": f"node-{datapath}", "connected": True,
                       "datapath_uuid": datapath, "seq": 0}
        self.interval = interval
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stopped.is_set():
            self.rpc.call("agent_status", params=self.status)
            self.stopped.wait(self.interval)

    def __enter__(self) -> FakeAgent:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)


def wait_connected(api: Api, datapath: str, connected: bool, within: float) -> float:
    """Seconds until the API shows is_connected == connected (fails after `within`)."""
    started = time.monotonic()
    while api.get(f"/datapaths/{datapath}").json()["is_connected"] != connected:
        assert time.monotonic() - started < within, f"{datapath} not {connected} in {within}s"
        time.sleep(0.1)
    return time.monotonic() - started


def test_is_connected_is_vnmgrs_to_write(api: Api, datapath: str) -> None:
    assert api.get(f"/datapaths/{datapath}").json()["is_connected"] is False
    health = api.get("/health").json()
    assert health["status"] == "degraded" and datapath in health["disconnected_datapaths"]
    seq = health["seq"]
    for response in (api.put(f"/datapaths/{datapath}", json={"is_connected": True}),
                     api.post("/datapaths", json={"uuid": unique("dp"), "dpid": "0x1234",
                                                  "node_id": "n", "is_connected": True})):
        assert response.status_code == 422, response.text
        assert response.json()["field"] == "is_connected"
    assert api.get("/health").json()["seq"] == seq


def test_reports_connect_and_their_absence_disconnects_within_5_s(
        api: Api, datapath: str) -> None:
    with FakeAgent(api, datapath):
        wait_connected(api, datapath, True, within=3)
        time.sleep(5)  # past agent_timeout: reports every second keep it connected
        assert api.get(f"/datapaths/{datapath}").json()["is_connected"] is True
        assert datapath not in api.get("/health").json()["disconnected_datapaths"]
        seq = api.get("/health").json()["seq"]
    assert wait_connected(api, datapath, False, within=5) < 5
    health = api.get("/health")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "degraded" and datapath in body["disconnected_datapaths"]
    assert body["seq"] == seq + 1  # an ordinary numbered change, as agents receive it
    with FakeAgent(api, datapath) as agent:
        wait_connected(api, datapath, True, within=3)
        agent.status = {**agent.status, "connected": False, "datapath_uuid": None}
        wait_connected(api, datapath, False, within=3)  # the vna lost its switch


def test_the_events_table_keeps_a_window_of_events_keep_rows(api: Api) -> None:
    """A vnmgr with [vnmgr] events_keep = 20 (batch 2): the table of this session's
    database, which holds every earlier test's events, shrinks to the window and stays
    there, and the numbering goes on."""
    api.vnmgr.stop()
    api.vnmgr = api.services.start_vnmgr(VNET_VNMGR_EVENTS_KEEP="20")
    engine = make_engine(api.database_url)
    try:
        for _ in range(10):
            api.create("security_groups", uuid=unique("sg"))
        deadline = time.monotonic() + 30
        while True:  # a long history is caught up on while vnmgr is idle
            with engine.connect() as connection:
                count, oldest, newest = connection.execute(select(
                    func.count(), func.min(m.Event.seq), func.max(m.Event.seq))).one()
            if count <= 22:
                break
            assert time.monotonic() < deadline, f"{count} events rows left"
            time.sleep(0.2)
        assert newest == api.get("/health").json()["seq"]
        assert newest - oldest + 1 == count
        api.create("security_groups", uuid=unique("sg"))
        assert api.get("/health").json()["seq"] == newest + 1
    finally:
        engine.dispose()
        api.vnmgr.stop()
        api.restart_vnmgr()
