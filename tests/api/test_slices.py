"""vnmgr's slice protocol over real ZeroMQ (docs/messaging.md "Events"): a node's
snapshot is its slice, its topic carries only its rows with consecutive message numbers,
`watch` brings a watched interface, and bad or unknown nodes get 4xx."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
import zmq

from lab.services import Services
from vnet.errors import ApiError
from vnet.keys import AGENT
from vnet.messaging import HEARTBEAT_TOPIC, RpcClient, node_topic

from .support import Api, random_mac, unique


class Topic:
    """A node's subscription, as its vna makes it: with the agent key."""

    def __init__(self, services: Services, node_id: str) -> None:
        self.socket = services.rpc(role=AGENT).socket(zmq.SUB)
        self.socket.setsockopt(zmq.SUBSCRIBE, node_topic(node_id))
        self.socket.setsockopt(zmq.SUBSCRIBE, HEARTBEAT_TOPIC)
        self.socket.connect(services.pub_endpoint)

    def messages(self, quiet_s: float = 1.0) -> tuple[list[dict], list[str]]:
        """(node messages as {header, changes}, epochs seen) until `quiet_s` without a
        node message that is not a heartbeat."""
        out, epochs = [], []
        until = time.monotonic() + quiet_s
        while (left := until - time.monotonic()) > 0:
            if not self.socket.poll(int(left * 1000) + 1):
                continue
            frames = self.socket.recv_multipart()
            if frames[0] == HEARTBEAT_TOPIC:
                epochs.append(json.loads(frames[1])["epoch"])
                continue
            header = json.loads(frames[1])
            if not header.get("heartbeat"):
                out.append({"header": header, **json.loads(frames[2])})
                until = time.monotonic() + quiet_s
        return out, epochs

    def close(self) -> None:
        self.socket.close()


@pytest.fixture
def rpc(api: Api) -> RpcClient:
    """vnmgr as an agent sees it: snapshot and watch are the agent key's to use."""
    return api.services.rpc(5000, role=AGENT)


@pytest.fixture
def world(api: Api) -> Iterator[dict[str, str]]:
    """Datapath dp-X (node X) with a vif on network A; network B has a vif elsewhere."""
    tag = unique("sl").replace("-", "")
    names = {"node": tag, "dp": f"dp-{tag}", "a": f"nw-{tag}a", "b": f"nw-{tag}b"}
    api.create("datapaths", uuid=names["dp"], node_id=tag, dpid=f"0x{secrets.randbits(48):016x}")
    for net, octet in (("a", 1), ("b", 2)):
        api.create("networks", uuid=names[net], ipv4_network=f"10.{200 + octet}.0.0",
                   ipv4_prefix=24)
    api.create("interfaces", uuid=f"if-{tag}a", mode="vif", owner_datapath_uuid=names["dp"],
               network_uuid=names["a"], mac_address=random_mac())
    api.create("interfaces", uuid=f"if-{tag}b", mode="vif", network_uuid=names["b"],
               mac_address=random_mac())
    yield names


def test_a_nodes_snapshot_is_its_slice(rpc: RpcClient, world: dict[str, str]) -> None:
    snap = rpc.call("snapshot", params={"node_id": world["node"], "watch": {}})
    assert {"seq", "model", "n", "epoch"} <= snap.keys()
    model = snap["model"]
    assert world["a"] in model["networks"] and world["b"] not in model["networks"]
    assert f"if-{world['node']}b" not in model["interfaces"]
    full = rpc.call("snapshot")["model"]  # no node: the whole model, as before
    assert world["b"] in full["networks"]


def test_a_nodes_topic_carries_only_its_rows_in_order(api: Api, rpc: RpcClient,
                                                      world: dict[str, str]) -> None:
    topic = Topic(api.services, world["node"])
    try:
        time.sleep(0.3)
        snap = rpc.call("snapshot", params={"node_id": world["node"], "watch": {}})
        theirs = api.create("interfaces", uuid=unique("if"), mode="vif",
                            network_uuid=world["b"], mac_address=random_mac())  # not its slice
        mine = api.create("interfaces", uuid=unique("if"), mode="vif",
                          network_uuid=world["a"], mac_address=random_mac())
        messages, epochs = topic.messages(quiet_s=1.5)
        assert [m["header"]["n"] for m in messages] == [snap["n"] + 1], (snap["n"], messages)
        uuids = {c["uuid"] for c in messages[0]["changes"]}
        assert mine["uuid"] in uuids, uuids
        # Neither the other network's new interface nor anything of network b comes (the
        # generated lease/MAC ids are random: compare whole uuids, not suffixes).
        assert not uuids & {theirs["uuid"], world["b"], f"if-{world['node']}b"}, uuids
        assert world["b"] not in json.dumps(messages), messages  # no row of b's, by reference
        assert set(epochs) <= {snap["epoch"]}, epochs
    finally:
        topic.close()


def test_watching_a_port_brings_its_interface(api: Api, rpc: RpcClient,
                                              world: dict[str, str]) -> None:
    topic = Topic(api.services, world["node"])
    try:
        time.sleep(0.3)
        rpc.call("snapshot", params={"node_id": world["node"], "watch": {}})
        other = f"if-{world['node']}b"
        rpc.call("watch", params={"node_id": world["node"], "watch": {"iface_ids": [other]}})
        messages, _ = topic.messages()
        entering = {(c["resource"], c["uuid"]) for m in messages for c in m["changes"]}
        assert ("interfaces", other) in entering and ("networks", world["b"]) in entering
    finally:
        topic.close()


@pytest.mark.parametrize("params, field", [
    ({"watch": {}}, "node_id"),
    ({"node_id": "", "watch": {}}, "node_id"),
    ({"node_id": "x", "watch": {"iface_ids": "if-a"}}, "watch"),
    ({"node_id": "x", "watch": {"dpid": 5}}, "watch"),
    ({"node_id": "x", "watch": []}, "watch"),
])
def test_bad_watch_requests_name_the_field(rpc: RpcClient, params: dict[str, Any],
                                           field: str) -> None:
    with pytest.raises(ApiError) as err:
        rpc.call("watch", params=params)
    assert (err.value.status, err.value.field) == (422, field)


def test_an_unknown_node_is_told_to_resync(rpc: RpcClient) -> None:
    with pytest.raises(ApiError) as err:
        rpc.call("watch", params={"node_id": unique("never"), "watch": {}})
    assert (err.value.status, err.value.field) == (409, "node_id")
    answer = rpc.call("agent_status", params={"node_id": unique("never")})
    assert answer["resync"] is True


@pytest.mark.parametrize("node_id", ["vna1\u0000", "a b", "a\nb", "\t"])
def test_a_node_id_that_could_not_name_a_topic_is_refused(api: Api, node_id: str) -> None:
    before = api.snapshot()["seq"]
    response = api.post("/datapaths", json={"uuid": f"dp-{secrets.token_hex(4)}",
                                            "dpid": f"0x{secrets.randbits(48):016x}",
                                            "node_id": node_id})
    assert response.status_code == 422 and response.json()["field"] == "node_id", response.text
    assert api.snapshot()["seq"] == before
