"""The OpenVNet-style walkthrough, verbatim and form-encoded as `curl -d` sends it."""

from __future__ import annotations

import secrets
from typing import Any

from .support import Api, random_mac, unique


def form(api: Api, method: str, path: str, expect: int, **fields: Any) -> dict[str, Any]:
    response = api.request(method, path, data=fields)
    assert response.status_code == expect, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    return response.json()


def test_openvnet_walkthrough(api: Api) -> None:
    dp = form(api, "POST", "/datapaths", 201, uuid="dp-test1", display_name="test1",
              dpid="0x0000aaaaaaaaaaaa", node_id="vna1")
    assert dp["dpid"] == "0x0000aaaaaaaaaaaa" and dp["node_id"] == "vna1"
    nw = form(api, "POST", "/networks", 201, uuid="nw-test1", display_name="testnet1",
              ipv4_network="10.100.0.0", ipv4_prefix="24", network_mode="virtual")
    assert (nw["ipv4_network"], nw["ipv4_prefix"], nw["network_mode"]) == \
        ("10.100.0.0", 24, "virtual")
    inst = form(api, "POST", "/interfaces", 201, uuid="if-inst1", mode="vif",
                owner_datapath_uuid="dp-test1", mac_address="10:54:ff:00:00:01",
                network_uuid="nw-test1", ipv4_address="10.100.0.10", port_name="inst1")
    assert (inst["mac_address"], inst["ipv4_address"], inst["network_uuid"]) == \
        ("10:54:ff:00:00:01", "10.100.0.10", "nw-test1")
    assert inst["mac_leases"][0]["ip_leases"][0]["ipv4_address"] == "10.100.0.10"
    router = form(api, "POST", "/interfaces", 201, uuid="if-router1", mode="simulated",
                  network_uuid="nw-test1", mac_address="02:00:00:00:02:01",
                  ipv4_address="10.100.0.1", enable_routing="true")
    assert router["enable_routing"] is True and router["owner_datapath_uuid"] is None
    form(api, "POST", "/route_links", 201, uuid="rl-1", mac_address="02:00:10:00:00:01")
    route = form(api, "POST", "/routes", 201, uuid="r-1", interface_uuid="if-router1",
                 network_uuid="nw-test1", ipv4_network="10.100.0.0", route_link_uuid="rl-1")
    assert route["ipv4_prefix"] == 24

    form(api, "POST", "/networks", 201, uuid="nw-test2", ipv4_network="192.168.50.0",
         ipv4_prefix="24")
    form(api, "POST", "/interfaces", 201, uuid="if-inst2", network_uuid="nw-test1")
    lease = form(api, "POST", "/ip_leases", 201, interface_uuid="if-inst2",
                 network_uuid="nw-test2", ipv4_address="192.168.50.10")
    assert lease["uuid"].startswith("il-") and lease["mac_lease_uuid"].startswith("ml-")
    shown = form(api, "GET", "/interfaces/if-inst2", 200)
    assert [ip["ipv4_address"] for ip in shown["mac_leases"][0]["ip_leases"]] == \
        ["10.100.0.2", "192.168.50.10"]
    assert form(api, "DELETE", f"/ip_leases/{lease['uuid']}", 200)["uuid"] == lease["uuid"]
    assert api.get(f"/ip_leases/{lease['uuid']}").status_code == 404

    renamed = form(api, "PUT", "/interfaces/if-inst1", 200, display_name="web server")
    assert renamed["display_name"] == "web server"
    assert renamed["mac_address"] == "10:54:ff:00:00:01"  # nested fields on writes too
    deleted = form(api, "DELETE", "/interfaces/if-inst1", 200)
    assert deleted["uuid"] == "if-inst1"
    assert api.get("/interfaces/if-inst1").status_code == 404


def test_query_string_parameters_for_put_and_delete(api: Api) -> None:
    group = api.create("security_groups", uuid=unique("sg"))
    updated = api.put(f"/security_groups/{group['uuid']}", params={"description": "web"})
    assert updated.status_code == 200 and updated.json()["description"] == "web"
    assert api.delete(f"/security_groups/{group['uuid']}").status_code == 200


def test_json_bodies_and_typed_values(api: Api, network: dict[str, Any]) -> None:
    iface = api.create("interfaces", uuid=unique("if"), network_uuid=network["uuid"],
                       enable_routing=True, display_name="json")
    assert iface["enable_routing"] is True and iface["ipv4_address"].startswith(
        network["ipv4_network"].rsplit(".", 1)[0])
    response = api.put(f"/interfaces/{iface['uuid']}", json={"enable_routing": False})
    assert response.status_code == 200 and response.json()["enable_routing"] is False
    # `curl -d '{...}'` without a JSON content type still means JSON.
    response = api.post("/security_groups", data='{"display_name": "raw"}',
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 201 and response.json()["display_name"] == "raw"


def test_pagination_and_filters(api: Api, network: dict[str, Any]) -> None:
    made = [api.create("interfaces", uuid=unique("if"), network_uuid=network["uuid"])
            for _ in range(5)]
    path = f"/ip_leases?network_uuid={network['uuid']}"
    total = api.get(path).json()["total_count"]
    assert total >= 5
    first = api.get(path + "&limit=2").json()
    second = api.get(path + "&limit=2&offset=2").json()
    assert (first["limit"], first["offset"], len(first["items"])) == (2, 0, 2)
    assert second["total_count"] == total and second["offset"] == 2
    seen = {item["uuid"] for item in first["items"]} | {i["uuid"] for i in second["items"]}
    assert len(seen) == 4
    assert all(i["network_uuid"] == network["uuid"] for i in first["items"])
    assert api.get("/ip_leases?limit=0").json()["items"] == []
    default = api.get("/interfaces").json()
    assert default["limit"] == 100 and default["offset"] == 0

    listed = api.get(f"/networks/{network['uuid']}/interfaces?limit=1000").json()
    assert {i["uuid"] for i in made} <= {i["uuid"] for i in listed["items"]}
    by_mac = api.get("/mac_leases", params={"mac_address": made[0]["mac_address"].upper()})
    assert [row["interface_uuid"] for row in by_mac.json()["items"]] == [made[0]["uuid"]]


def test_sub_resources(api: Api, network: dict[str, Any]) -> None:
    dp = api.create("datapaths", uuid=unique("dp"), node_id=unique("vna"),
                    dpid=hex(secrets.randbits(48)))
    host = api.create("interfaces", uuid=unique("if"), mode="host", network_uuid=network["uuid"],
                      owner_datapath_uuid=dp["uuid"])
    base = f"/datapaths/{dp['uuid']}/networks/{network['uuid']}"
    mac = random_mac()
    created = api.post(base, data={"broadcast_mac_address": mac, "interface_uuid": host["uuid"]})
    assert created.status_code == 201, created.text
    row = created.json()
    assert (row["datapath_uuid"], row["network_uuid"], row["broadcast_mac_address"],
            row["interface_uuid"]) == (dp["uuid"], network["uuid"], mac, host["uuid"])
    assert api.get(base).json()["uuid"] == row["uuid"]
    listed = api.get(f"/datapaths/{dp['uuid']}/networks").json()
    assert [r["uuid"] for r in listed["items"]] == [row["uuid"]]
    assert api.post(base, data={}).status_code == 409

    link = api.create("route_links", uuid=unique("rl"))
    dprl = api.post(f"/datapaths/{dp['uuid']}/route_links/{link['uuid']}", json={})
    assert dprl.status_code == 201 and dprl.json()["route_link_uuid"] == link["uuid"]

    group = api.create("security_groups", uuid=unique("sg"))
    vm = api.create("interfaces", uuid=unique("if"), network_uuid=network["uuid"])
    member = f"/interfaces/{vm['uuid']}/security_groups/{group['uuid']}"
    assert api.post(member).status_code == 201
    assert api.get(f"/security_groups/{group['uuid']}/interfaces").json()["total_count"] == 1
    assert api.delete(member).status_code == 200
    assert api.get(member).status_code == 404

    status = api.get(f"/datapaths/{dp['uuid']}/status").json()
    assert status["node_id"] == dp["node_id"] and status["agent"] is None

    assert api.delete(base).json()["uuid"] == row["uuid"]
    assert api.get(base).status_code == 404
