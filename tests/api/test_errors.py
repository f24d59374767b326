"""Every error class: right status, JSON body naming the field, and no change at all."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from .support import Api, random_mac, unique


@dataclass(frozen=True)
class Fixture:
    """Rows the bad requests refer to (created once per backend)."""

    network: dict[str, Any]
    interface: dict[str, Any]
    datapath: dict[str, Any]
    route_link: dict[str, Any]


@pytest.fixture(scope="module")
def rows(api: Api, network: dict[str, Any]) -> Fixture:
    dp = api.create("datapaths", uuid=unique("dp"), node_id="errors", dpid="0xe5")
    iface = api.create("interfaces", uuid=unique("if"), network_uuid=network["uuid"],
                       mac_address=random_mac(), owner_datapath_uuid=dp["uuid"],
                       port_name="tap-errors")
    return Fixture(network, iface, dp, api.create("route_links", uuid=unique("rl")))


def _subnet(rows: Fixture, last: int) -> str:
    return rows.network["ipv4_network"].rsplit(".", 1)[0] + f".{last}"


def _interface(rows: Fixture, **fields: Any) -> tuple[str, str, dict[str, Any]]:
    return "POST", "/interfaces", {"uuid": unique("if"), "network_uuid": rows.network["uuid"],
                                   **fields}


Case = Callable[[Fixture], tuple[str, str, Any]]

CASES: dict[str, tuple[Case, int, str | None]] = {
    "bad uuid format": (lambda r: ("POST", "/networks", {"uuid": "NW_Bad",
                                                         "ipv4_network": "10.1.0.0"}),
                        422, "uuid"),
    "uuid of another resource": (lambda r: ("POST", "/networks", {
        "uuid": "if-abc", "ipv4_network": "10.1.0.0"}), 422, "uuid"),
    "bad MAC": (lambda r: _interface(r, mac_address="10:54:ff:00:00"), 422, "mac_address"),
    "multicast MAC": (lambda r: _interface(r, mac_address="01:00:5e:00:00:01"), 422,
                      "mac_address"),
    "bad IP": (lambda r: _interface(r, ipv4_address="10.1.2.300"), 422, "ipv4_address"),
    "IP outside network": (lambda r: _interface(r, ipv4_address="172.31.0.5"), 422,
                           "ipv4_address"),
    "network address": (lambda r: _interface(r, ipv4_address=_subnet(r, 0)), 422,
                        "ipv4_address"),
    "broadcast address": (lambda r: _interface(r, ipv4_address=_subnet(r, 255)), 422,
                          "ipv4_address"),
    "network not aligned": (lambda r: ("POST", "/networks", {"ipv4_network": "10.1.0.1"}),
                            422, "ipv4_network"),
    "bad prefix": (lambda r: ("POST", "/networks", {"ipv4_network": "10.1.0.0",
                                                    "ipv4_prefix": "33"}), 422, "ipv4_prefix"),
    "missing required field": (lambda r: ("POST", "/datapaths", {"dpid": "0x1"}), 422,
                               "node_id"),
    "bad boolean": (lambda r: _interface(r, enable_routing="maybe"), 422, "enable_routing"),
    "bad mode": (lambda r: _interface(r, mode="tap"), 422, "mode"),
    "duplicate uuid": (lambda r: ("POST", "/networks", {"uuid": r.network["uuid"],
                                                        "ipv4_network": "10.1.0.0"}),
                       409, "uuid"),
    "duplicate MAC": (lambda r: _interface(r, mac_address=r.interface["mac_address"].upper()),
                      409, "mac_address"),
    "duplicate IP": (lambda r: _interface(r, ipv4_address=r.interface["ipv4_address"]), 409,
                     "ipv4_address"),
    "duplicate dpid": (lambda r: ("POST", "/datapaths", {"node_id": "x",
                                                         "dpid": "00000000000000e5"}), 409,
                       "dpid"),
    "unknown network": (lambda r: ("POST", "/interfaces", {"network_uuid": "nw-nosuch"}), 404,
                        "network_uuid"),
    "unknown datapath": (lambda r: _interface(r, owner_datapath_uuid="dp-nosuch"), 404,
                         "owner_datapath_uuid"),
    "unknown route link": (lambda r: ("POST", "/routes", {
        "interface_uuid": r.interface["uuid"], "route_link_uuid": "rl-nosuch"}), 404,
                           "route_link_uuid"),
    "unknown join end": (lambda r: ("POST", f"/datapaths/{r.datapath['uuid']}/networks/nw-x",
                                    {}), 404, "network_uuid"),
    "show unknown": (lambda r: ("GET", "/networks/nw-nosuch", None), 404, "uuid"),
    "update unknown": (lambda r: ("PUT", "/networks/nw-nosuch", {"display_name": "x"}), 404,
                       "uuid"),
    "delete unknown": (lambda r: ("DELETE", "/interfaces/if-nosuch", None), 404, "uuid"),
    "immutable field": (lambda r: ("PUT", f"/networks/{r.network['uuid']}",
                                   {"ipv4_prefix": "16"}), 422, "ipv4_prefix"),
    "network in use": (lambda r: ("DELETE", f"/networks/{r.network['uuid']}", None), 409, None),
    "datapath in use": (lambda r: ("DELETE", f"/datapaths/{r.datapath['uuid']}", None), 409,
                        None),
    # A parameter the write would ignore (issue 9 §2): named, never dropped.
    "unknown parameter": (lambda r: ("POST", "/networks", {"ipv4_netwrk": "10.1.0.0"}), 422,
                          "ipv4_netwrk"),
    "unknown query parameter on DELETE": (
        lambda r: ("DELETE", f"/interfaces/{r.interface['uuid']}?force=1", None), 422, "force"),
    "unknown query parameter on POST": (
        lambda r: ("POST", "/route_links?colour=red", {}), 422, "colour"),
    "OpenVNet feature not implemented": (
        lambda r: _interface(r, enable_route_translation="true"), 422,
        "enable_route_translation"),
    "PUT of a create-only field": (lambda r: ("PUT", f"/interfaces/{r.interface['uuid']}",
                                              {"ipv4_address": _subnet(r, 99)}), 422,
                                   "ipv4_address"),
    "PUT of a read-only field": (lambda r: ("PUT", f"/networks/{r.network['uuid']}",
                                            {"uuid": "nw-other"}), 422, "uuid"),
    "PUT clearing a field with no null": (lambda r: ("PUT", f"/datapaths/{r.datapath['uuid']}",
                                                     {"node_id": ""}), 422, "node_id"),
    "join body end disagreeing with the path": (
        lambda r: ("POST", f"/datapaths/{r.datapath['uuid']}/networks/{r.network['uuid']}",
                   {"network_uuid": "nw-other"}), 422, "network_uuid"),
    "route through a plain vif": (lambda r: ("POST", "/routes", {
        "interface_uuid": r.interface["uuid"], "route_link_uuid": r.route_link["uuid"]}), 422,
                                  "interface_uuid"),
    "all-zero MAC": (lambda r: _interface(r, mac_address="00:00:00:00:00:00"), 422,
                     "mac_address"),
    "dpid in no OVS form": (lambda r: ("POST", "/datapaths", {"node_id": "x", "dpid": "0x1g"}),
                            422, "dpid"),
    "integer with a digit separator": (lambda r: ("POST", "/networks", {
        "ipv4_network": "10.1.0.0", "ipv4_prefix": "2_4"}), 422, "ipv4_prefix"),
    "boolean OpenVNet would not take": (lambda r: _interface(r, enable_routing="on"), 422,
                                        "enable_routing"),
    "port_name taken on the datapath": (lambda r: _interface(
        r, owner_datapath_uuid=r.datapath["uuid"], port_name="tap-errors"), 409, "port_name"),
    "malformed JSON": (lambda r: ("POST", "/networks", '{"uuid": "nw-x",'), 400, None),
    "JSON not an object": (lambda r: ("POST", "/networks", "[1, 2]"), 400, None),
    "JSON nested too deeply": (lambda r: ("POST", "/networks", "[" * 100000 + "]" * 100000),
                               400, None),
    # [webapi] max_body_bytes (1 MiB): answered 413 without being read
    "body too large": (lambda r: ("POST", "/networks", {
        "ipv4_network": "10.1.0.0", "display_name": "x" * (2 << 20)}), 413, None),
    "query parameter on a GET of one row": (lambda r: (
        "GET", f"/datapaths/{r.datapath['uuid']}?bogus=1", None), 400, "bogus"),
    "bad limit": (lambda r: ("GET", "/networks?limit=1001", None), 422, "limit"),
    "non-numeric offset": (lambda r: ("GET", "/networks?offset=x", None), 422, "offset"),
    "unknown filter": (lambda r: ("GET", "/ip_leases?colour=red", None), 400, "colour"),
    "bad filter value": (lambda r: ("GET", "/mac_leases?mac_address=zz", None), 422,
                         "mac_address"),
    "unknown route": (lambda r: ("GET", "/no/such/thing", None), 404, None),
    "method not allowed": (lambda r: ("PUT", "/ip_leases/il-x", {}), 405, None),
    # One value per name: `-d rules=A -d rules=B` must not silently keep one of them.
    "repeated form field": (lambda r: ("POST", "/networks", [
        ("ipv4_network", "10.1.0.0"), ("display_name", "a"), ("display_name", "b")]), 422,
                            "display_name"),
    "repeated query parameter": (lambda r: ("POST", "/route_links?display_name=a&display_name=b",
                                            {}), 422, "display_name"),
    "duplicate JSON key": (lambda r: ("POST", "/networks", '{"ipv4_network": "10.1.0.0", '
                                      '"display_name": "a", "display_name": "b"}'), 422,
                           "display_name"),
    "NaN is not JSON": (lambda r: ("POST", "/networks", '{"ipv4_network": "10.1.0.0", '
                                   '"display_name": NaN}'), 400, None),
    "filtering flag on a router port": (lambda r: _interface(
        r, mode="simulated", enable_filtering="true"), 422, "enable_filtering"),
    "filtering flag on a host interface": (lambda r: ("POST", "/interfaces", {
        "mode": "host", "owner_datapath_uuid": r.datapath["uuid"],
        "ingress_filtering_enabled": "true"}), 422, "ingress_filtering_enabled"),
}


def _send(api: Api, method: str, path: str, body: Any) -> Any:
    if isinstance(body, str):
        return api.request(method, path, data=body, headers={"Content-Type": "application/json"})
    return api.request(method, path, data=body)


@pytest.mark.parametrize("case", sorted(CASES))
def test_rejected_request_changes_nothing(api: Api, rows: Fixture, case: str) -> None:
    build, status, field = CASES[case]
    method, path, body = build(rows)
    before = api.snapshot()
    response = _send(api, method, path, body)
    assert response.status_code == status, response.text
    error = response.json()
    assert set(error) == {"error", "message", "field"} and error["message"]
    assert error["field"] == field
    assert api.snapshot() == before


def test_json_body_errors_name_the_field(api: Api, rows: Fixture) -> None:
    response = api.post("/interfaces", json={"network_uuid": rows.network["uuid"],
                                             "display_name": {"nested": 1}})
    assert response.status_code == 422 and response.json()["field"] == "display_name"


def test_the_connection_after_a_413_still_serves(api: Api) -> None:
    """The refused body is read and dropped: the next request on the same keep-alive
    connection gets its answer (it failed 16 times in 60 while the body stayed unread)."""
    with requests.Session() as http:
        for _ in range(20):
            big = http.post(api.url + "/networks", timeout=30,
                            data={"ipv4_network": "10.1.0.0", "display_name": "x" * (2 << 20)})
            assert big.status_code == 413
            after = http.get(api.url + "/networks?limit=1", timeout=30)
            assert after.status_code == 200
