"""vnet-webapi under gunicorn with several workers: each worker serves on its own
connections to the database and vnmgr, and SIGTERM lets a request in flight finish.

A request is held in flight for real: webapi's vnmgr endpoint is a ZeroMQ relay owned by
the test, which forwards every request to the real vnmgr, except the one creating the
row named by `hold_uuid`: that one it keeps (so its worker sits inside the view, waiting
for vnmgr) until `release`. Matching the row, not "the next request", keeps a late
health check (from start-up polling under load) from being held instead.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
import zmq

from lab.hosts import Lab
from lab.proc import wait_for
from lab.services import ServiceHandle, Services
from vnet.messaging import RpcClient, decode

from .support import unique

WORKERS = 3


class HoldingRelay:
    """ROUTER (webapi's side) -> DEALER (vnmgr's side), in one thread of its own, since
    ZeroMQ sockets are not thread-safe."""

    def __init__(self, frontend: str, backend: str) -> None:
        self.frontend, self.backend = frontend, backend
        self.hold_uuid: str | None = None
        self.arrived, self.release = threading.Event(), threading.Event()
        self.stopped = threading.Event()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(10)

    def _run(self) -> None:
        context = zmq.Context.instance()
        front, back = context.socket(zmq.ROUTER), context.socket(zmq.DEALER)
        for sock in (front, back):
            sock.setsockopt(zmq.LINGER, 0)
        front.bind(self.frontend)
        back.connect(self.backend)
        self.ready.set()
        try:
            while not self.stopped.is_set():
                if not front.poll(100):
                    continue
                client, empty, request = front.recv_multipart()
                if self._held(decode(request)):
                    self.arrived.set()
                    self.release.wait(30)
                back.send_multipart([empty, request])
                if back.poll(20000):
                    front.send_multipart([client, *back.recv_multipart()])
        finally:
            front.close()
            back.close()

    def _held(self, request: dict[str, Any]) -> bool:
        return (request["op"], request["resource"]) == ("create", "networks") \
            and self.hold_uuid is not None and request["params"].get("uuid") == self.hold_uuid

    def close(self) -> None:
        self.stopped.set()
        self.release.set()
        self.thread.join(10)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Services, ServiceHandle, HoldingRelay]]:
    with Lab() as lab:
        # Keys off: the relay reads requests in the clear (CURVE is tested in test_keys).
        services = Services(lab, extra_env={"VNET_MESSAGING_RPC_TIMEOUT_MS": "20000"},
                            keys=False)
        services.start_vnmgr()
        relay = HoldingRelay(f"ipc://{tmp_path}/relay.sock", services.rpc_endpoint)
        lab.on_close(relay.close)
        webapi = services.start_webapi(VNET_WEBAPI_WORKERS=str(WORKERS),
                                       VNET_WEBAPI_THREADS="2",
                                       VNET_WEBAPI_GRACEFUL_TIMEOUT="20",
                                       VNET_MESSAGING_RPC_ENDPOINT=relay.frontend)
        yield services, webapi, relay


def children(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(c) for c in (task / "children").read_text().split()}
    return found


def booted_workers(webapi: ServiceHandle) -> set[int]:
    """The pids of webapi's gunicorn workers, once all WORKERS are forked."""
    def found() -> set[int] | None:
        pids = children(webapi.pid)
        return pids if len(pids) == WORKERS else None
    return wait_for(found, 20, interval=0.1, what=f"{WORKERS} gunicorn workers")


def test_workers_serve_side_by_side(stack: tuple[Services, ServiceHandle, HoldingRelay]
                                    ) -> None:
    services, webapi, _relay = stack
    booted_workers(webapi)
    url = services.webapi_url + "/api/1.0"
    uuids = [unique("nw") for _ in range(12)]

    def create(n: int) -> int:
        return requests.post(f"{url}/networks", timeout=30, data={
            "uuid": uuids[n], "ipv4_network": f"10.{90 + n}.0.0", "ipv4_prefix": 24,
        }).status_code

    with ThreadPoolExecutor(12) as pool:
        assert list(pool.map(create, range(12))) == [201] * 12
    listed = requests.get(f"{url}/networks", timeout=30).json()
    assert {row["uuid"] for row in listed["items"]} >= set(uuids)


def test_sigterm_lets_the_request_in_flight_finish(
        stack: tuple[Services, ServiceHandle, HoldingRelay]) -> None:
    services, webapi, relay = stack
    workers = booted_workers(webapi)
    uuid = unique("nw")
    relay.hold_uuid = uuid
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(requests.post, services.webapi_url + "/api/1.0/networks",
                             data={"uuid": uuid, "ipv4_network": "10.120.0.0",
                                   "ipv4_prefix": 24}, timeout=60)
        assert relay.arrived.wait(20), "the POST never reached vnmgr's endpoint"
        # The POST is inside a worker, waiting for vnmgr: stop webapi now.
        os.kill(webapi.pid, signal.SIGTERM)
        # Held 2 s on: the workers have had SIGTERM for a while (with graceful_timeout
        # = 1 this test fails here: the worker is killed, the POST gets a reset).
        time.sleep(2.0)
        assert webapi.alive() and not answer.done()
        relay.release.set()
        response = answer.result(30)
    assert response.status_code == 201, response.text
    assert webapi.popen.wait(30) == 0, webapi.log_text()[-3000:]
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
    assert uuid in RpcClient(services.rpc_endpoint, 5000).call("snapshot")["model"]["networks"]
    assert "Shutting down" in webapi.log_text()
