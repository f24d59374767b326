"""The service around the routes: events, concurrency, cascades, outages, schema init."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
import zmq

from lab.services import Services, find_program
from vnet.db import head_revision
from vnet.messaging import GLOBAL_TOPIC

from .support import Api, unique


class Events:
    """A SUB socket on vnmgr's PUB endpoint that separates heartbeats from changes."""

    def __init__(self, services: Services) -> None:
        self.socket = services.rpc().socket(zmq.SUB)  # with the lab's webapi key
        self.socket.setsockopt(zmq.SUBSCRIBE, GLOBAL_TOPIC)
        self.socket.connect(services.pub_endpoint)
        self.heartbeat_seq = -1

    def _receive(self, timeout_ms: int) -> dict[str, Any] | None:
        if not self.socket.poll(timeout_ms):
            return None
        topic, data = self.socket.recv_multipart()
        assert topic == GLOBAL_TOPIC
        return json.loads(data)

    def wait_heartbeat(self) -> int:
        """A heartbeat proves the subscription is live (PUB drops earlier messages)."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            message = self._receive(500)
            if message and message.get("heartbeat"):
                self.heartbeat_seq = message["seq"]
                return message["seq"]
        raise AssertionError("no heartbeat from vnmgr within 5 s")

    def changes(self, wait_ms: int) -> list[dict[str, Any]]:
        """Every change event arriving until `wait_ms` pass without one (heartbeats keep
        coming meanwhile, so the quiet period is timed, not a single poll)."""
        events: list[dict[str, Any]] = []
        quiet_until = time.monotonic() + wait_ms / 1000
        while (left := quiet_until - time.monotonic()) > 0:
            message = self._receive(int(left * 1000) + 1)
            if message is None:
                continue
            if message.get("heartbeat"):
                self.heartbeat_seq = message["seq"]
            else:
                events.append(message)
                quiet_until = time.monotonic() + wait_ms / 1000
        return events

    def close(self) -> None:
        self.socket.close()


@pytest.fixture
def events(api: Api) -> Iterator[Events]:
    subscriber = Events(api.services)
    yield subscriber
    subscriber.close()


def test_each_write_publishes_exactly_one_event(api: Api, events: Events,
                                                network: dict[str, Any]) -> None:
    seq = events.wait_heartbeat()
    iface = api.create("interfaces", uuid=unique("if"), network_uuid=network["uuid"])
    group = api.create("security_groups", uuid=unique("sg"))
    assert api.put(f"/security_groups/{group['uuid']}",
                   data={"rules": "tcp:22:0.0.0.0/0"}).ok
    lease = api.post("/ip_leases", data={"interface_uuid": iface["uuid"],
                                         "network_uuid": network["uuid"]}).json()
    assert api.delete(f"/interfaces/{iface['uuid']}").ok
    assert api.post("/networks", data={"uuid": "bad"}).status_code == 422  # no event

    received = events.changes(wait_ms=700)
    assert [e["seq"] for e in received] == [seq + n for n in range(1, 6)]
    assert events.heartbeat_seq == seq + 5

    def summary(event: dict[str, Any]) -> set[tuple[str, str]]:
        return {(c["resource"], c["op"]) for c in event["changes"]}

    created, group_made, group_updated, leased, deleted = received
    assert summary(created) == {("interfaces", "upsert"), ("mac_leases", "upsert"),
                                ("ip_leases", "upsert")}
    assert {c["uuid"] for c in created["changes"]} >= {iface["uuid"]}
    assert group_made["changes"] == [{"resource": "security_groups", "uuid": group["uuid"],
                                      "op": "upsert", "data": group}]
    assert group_updated["changes"][0]["data"]["rules"] == "tcp:22:0.0.0.0/0"
    assert leased["changes"] == [{"resource": "ip_leases", "uuid": lease["uuid"],
                                  "op": "upsert", "data": lease}]
    assert summary(deleted) == {("interfaces", "delete"), ("mac_leases", "delete"),
                                ("ip_leases", "delete")}


def test_interface_delete_cascades_its_leases(api: Api, network: dict[str, Any]) -> None:
    iface = api.create("interfaces", uuid=unique("if"), network_uuid=network["uuid"])
    mac_lease = iface["mac_leases"][0]
    extra = api.post("/ip_leases", data={"interface_uuid": iface["uuid"],
                                         "network_uuid": network["uuid"]}).json()
    group = api.create("security_groups", uuid=unique("sg"))
    assert api.post(f"/interfaces/{iface['uuid']}/security_groups/{group['uuid']}").ok

    assert api.delete(f"/interfaces/{iface['uuid']}").status_code == 200
    for path in (f"/mac_leases/{mac_lease['uuid']}", f"/ip_leases/{extra['uuid']}",
                 f"/ip_leases/{mac_lease['ip_leases'][0]['uuid']}"):
        assert api.get(path).status_code == 404
    assert api.get("/ip_leases", params={"interface_uuid": iface["uuid"]}).json()[
        "total_count"] == 0
    assert api.get(f"/security_groups/{group['uuid']}/interfaces").json()["total_count"] == 0


def test_concurrent_creates_get_unique_addresses(api: Api) -> None:
    network = api.create("networks", uuid=unique("nw"), ipv4_network="172.16.0.0",
                         ipv4_prefix=24)

    def create(_: int) -> requests.Response:
        # A session per thread: requests.Session is not meant to be shared across threads.
        with requests.Session() as http:
            return http.post(api.url + "/interfaces", data={"network_uuid": network["uuid"]},
                             timeout=30)

    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(create, range(20)))
    assert [r.status_code for r in responses] == [201] * 20, [r.text for r in responses]
    rows = [r.json() for r in responses]
    assert len({r["uuid"] for r in rows}) == 20
    assert len({r["mac_address"] for r in rows}) == 20
    assert len({r["ipv4_address"] for r in rows}) == 20
    leases = api.get("/ip_leases", params={"network_uuid": network["uuid"]}).json()
    assert leases["total_count"] == 20
    assert sorted(lease["ipv4_address"] for lease in leases["items"]) == \
        sorted(r["ipv4_address"] for r in rows)


def test_vnmgr_down_gives_503_and_reads_still_work(api: Api) -> None:
    group = api.create("security_groups", uuid=unique("sg"))
    api.vnmgr.stop()
    try:
        lost = unique("sg")
        write = api.post("/security_groups", data={"uuid": lost})
        assert write.status_code == 503
        assert write.json()["error"] == "unavailable"
        health = api.get("/health")
        assert health.status_code == 503
        body = health.json()
        assert isinstance(body.pop("disconnected_datapaths"), list)  # the database answers
        assert body == {"status": "unavailable", "webapi": "ok", "vnmgr": "unavailable",
                        "database": "ok", "seq": None}
        # Reads bypass vnmgr: the database still answers them.
        assert api.get(f"/security_groups/{group['uuid']}").status_code == 200
        metrics = requests.get(api.services.webapi_url + "/metrics", timeout=5).text
        assert "vnet_webapi_vnmgr_failures_total 0.0" not in metrics
    finally:
        api.restart_vnmgr()
    deadline = time.monotonic() + 10
    while api.get("/health").status_code != 200:
        assert time.monotonic() < deadline, "vnmgr did not come back"
        time.sleep(0.1)
    # The write that got a 503 must not be applied late by the restarted vnmgr.
    assert api.get(f"/security_groups/{lost}").status_code == 404


def test_metrics_count_requests(api: Api) -> None:
    api.get("/networks/nw-nosuch")
    text = requests.get(api.services.webapi_url + "/metrics", timeout=5).text
    assert ('vnet_webapi_requests_total{endpoint="networks_show",method="GET",status="4xx"}'
            in text)
    assert "vnet_webapi_request_seconds_count" in text


def test_db_init_is_idempotent(api: Api) -> None:
    before = api.snapshot()
    env = {**os.environ, "VNET_DATABASE_URL": api.database_url}
    for _ in range(2):
        subprocess.run([find_program("vnmgr"), "db", "init"], env=env, check=True,
                       capture_output=True, timeout=60)
    revision = subprocess.run([find_program("vnmgr"), "db", "revision"], env=env, check=True,
                              capture_output=True, text=True, timeout=60)
    assert revision.stdout.strip() == head_revision()
    assert api.snapshot() == before

