"""CURVE keys and roles between real processes (docs/messaging.md, "Keys and roles").

The API stack runs with the lab's keys (lab.services): a client without a key, or with a
key vnmgr does not know, gets no answer and no event; the agent key reads and reports
but cannot write; the webapi key writes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import zmq

from lab.services import find_program, free_tcp_port, http_ok, start_service
from vnet.errors import ApiError
from vnet.keys import AGENT, WEBAPI, ClientKeys
from vnet.messaging import GLOBAL_TOPIC, RpcClient

from .support import Api, unique

# Heartbeats come every 0.2 s in the API stack (conftest.SERVICE_ENV): a subscriber
# that hears none for this long hears nothing.
SILENCE_S = 1.5


def stranger_keys(api: Api) -> ClientKeys:
    """A well-formed key pair vnmgr was never told about, aimed at the right server."""
    known = api.services.client_keys(AGENT)
    assert known is not None, "the API stack must run with keys"
    public, secret = zmq.curve_keypair()
    return ClientKeys(AGENT, known.server_public, public, secret)


class Subscriber:
    """A SUB socket on vnmgr's `global` topic (every event and heartbeat)."""

    def __init__(self, api: Api, keys: ClientKeys | None) -> None:
        self.socket = RpcClient(api.services.rpc_endpoint, keys=keys).socket(zmq.SUB)
        self.socket.setsockopt(zmq.SUBSCRIBE, GLOBAL_TOPIC)
        self.socket.connect(api.services.pub_endpoint)

    def messages(self, seconds: float) -> list[dict]:
        out: list[dict] = []
        until = time.monotonic() + seconds
        while (left := until - time.monotonic()) > 0:
            if self.socket.poll(int(left * 1000) + 1):
                out.append(json.loads(self.socket.recv_multipart()[1]))
        return out

    def wait_heartbeat(self) -> None:
        assert any(m.get("heartbeat") for m in self.messages(SILENCE_S)), "no heartbeat"

    def close(self) -> None:
        self.socket.close()


@pytest.fixture
def subscribers(api: Api) -> Iterator[list[Subscriber]]:
    made: list[Subscriber] = []
    yield made
    for subscriber in made:
        subscriber.close()


def write_network(api: Api) -> str:
    """A write through the webapi (hence with its key); the new network's uuid."""
    return api.create("networks", uuid=unique("nw"), ipv4_network="10.250.0.0",
                      ipv4_prefix=24)["uuid"]


@pytest.mark.parametrize("who", ["no key", "unknown key"])
def test_an_unkeyed_or_unknown_client_gets_no_answer_and_no_event(
        api: Api, subscribers: list[Subscriber], who: str) -> None:
    keys = None if who == "no key" else stranger_keys(api)
    before = api.snapshot()
    for op, resource, params in (("health", None, {}), ("snapshot", None, {}),
                                 ("create", "networks", {"uuid": unique("nw"),
                                                         "ipv4_network": "10.251.0.0",
                                                         "ipv4_prefix": 24})):
        with pytest.raises(ApiError) as err:
            RpcClient(api.services.rpc_endpoint, 1000, keys=keys).call(op, resource,
                                                                        params=params)
        assert err.value.status == 503 and "did not answer" in err.value.message, op
    assert api.snapshot() == before  # the write was never applied
    outsider = Subscriber(api, keys)
    insider = Subscriber(api, api.services.client_keys(AGENT))
    subscribers += [outsider, insider]
    insider.wait_heartbeat()  # the insider's subscription is live ...
    uuid = write_network(api)
    seen = insider.messages(SILENCE_S)
    assert any(uuid in json.dumps(m) for m in seen), seen  # ... and it hears the write
    assert outsider.messages(0.1) == []  # the outsider heard not even a heartbeat


def test_an_agent_key_cannot_write_and_is_told_its_role(api: Api) -> None:
    agent = api.services.rpc(3000, role=AGENT)
    before = api.snapshot()
    with pytest.raises(ApiError) as err:
        agent.call("create", "networks", params={"uuid": unique("nw"),
                                                 "ipv4_network": "10.252.0.0",
                                                 "ipv4_prefix": 24})
    assert (err.value.status, err.value.error, err.value.field) == (403, "forbidden", "op")
    assert "role agent may not create networks" in err.value.message
    datapath = api.create("datapaths", uuid=unique("dp"), node_id=unique("node"),
                          dpid="0x0000000000c0ffee")
    for params in ({"display_name": "mine"}, {"is_connected": "true"}):
        with pytest.raises(ApiError) as err:  # not even is_connected: vnmgr.liveness's
            agent.call("update", "datapaths", datapath["uuid"], params)
        assert err.value.status == 403, params
    assert api.snapshot()["seq"] == before["seq"] + 1  # the datapath, and nothing else


def test_an_agent_key_takes_its_slice_and_receives_its_events(
        api: Api, subscribers: list[Subscriber]) -> None:
    agent = api.services.rpc(3000, role=AGENT)
    node = unique("node")
    snap = agent.call("snapshot", params={"node_id": node, "watch": {}})
    assert {"seq", "model", "n", "epoch"} <= set(snap)
    assert agent.call("agent_status", params={"node_id": node, "seq": snap["seq"]}) == {
        "seq": snap["seq"], "resync": False}
    listener = Subscriber(api, api.services.client_keys(AGENT))
    subscribers.append(listener)
    listener.wait_heartbeat()
    uuid = write_network(api)
    assert any(uuid in json.dumps(m) for m in listener.messages(SILENCE_S))


def test_the_webapi_key_writes(api: Api) -> None:
    webapi = api.services.rpc(3000, role=WEBAPI)
    uuid = unique("nw")
    row = webapi.call("create", "networks", params={"uuid": uuid, "ipv4_network": "10.253.0.0",
                                                    "ipv4_prefix": 24})
    assert row["uuid"] == uuid
    assert uuid in api.snapshot()["model"]["networks"]
    webapi.call("delete", "networks", uuid)
    assert uuid not in api.snapshot()["model"]["networks"]


def test_client_key_picks_the_role_a_webapi_writes_with(api: Api) -> None:
    """`[messaging] client_key = agent` on a webapi: it reads (from the database) but
    its writes come back as vnmgr's 403, over HTTP, naming the role."""
    services = api.services
    port = free_tcp_port()
    env = {**services.common_env("webapi-agent"), "VNET_WEBAPI_HOST": "127.0.0.1",
           "VNET_WEBAPI_PORT": str(port), "VNET_MESSAGING_CLIENT_KEY": AGENT}
    handle = start_service("webapi-agent", [find_program("vnet-webapi")],
                           run_dir=services.run_dir, env=env)
    try:
        url = f"http://127.0.0.1:{port}/api/1.0"
        handle.wait_ready(lambda: http_ok(url + "/health"), 30, "its health answer")
        before = api.snapshot()["seq"]
        response = api.http.post(url + "/networks", timeout=30,
                                 json={"uuid": unique("nw"), "ipv4_network": "10.254.0.0",
                                       "ipv4_prefix": 24})
        assert response.status_code == 403, response.text
        body = response.json()
        assert (body["error"], body["field"]) == ("forbidden", "op")
        assert "role agent may not create networks" in body["message"]
        assert api.http.get(url + "/networks", timeout=30).status_code == 200
        assert api.snapshot()["seq"] == before
    finally:
        handle.stop()
