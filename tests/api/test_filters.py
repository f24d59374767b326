"""OpenVNet's static filters through the API (its filters.rb): a filter of a vif, and its
static entries under /filters/<uuid>/static (or /static_filter), created, listed and
deleted by uuid or by the POST's parameters."""

from __future__ import annotations

from typing import Any

import pytest

from .support import Api, refused, unique

STATIC_FIELDS = {"id", "uuid", "filter_uuid", "protocol", "ipv4_address", "ipv4_prefix",
                 "port_number", "passthrough", "created_at", "updated_at"}
FILTER_FIELDS = {"id", "uuid", "interface_uuid", "mode", "ingress_passthrough",
                 "egress_passthrough", "created_at", "updated_at"}


@pytest.fixture
def vif(api: Api, network: dict[str, Any]) -> dict[str, Any]:
    return api.create("interfaces", uuid=unique("if"), network_uuid=network["uuid"],
                      enable_filtering=True)


def a_filter(api: Api, iface: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return api.create("filters", uuid=unique("fil"), interface_uuid=iface["uuid"],
                      mode="static", **fields)


def add_static(api: Api, filter_uuid: str, segment: str = "static",
               **body: Any) -> dict[str, Any]:
    response = api.post(f"/filters/{filter_uuid}/{segment}", data=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_filter_rows_and_updates(api: Api, vif: dict[str, Any]) -> None:
    row = a_filter(api, vif)
    assert set(row) == FILTER_FIELDS
    assert (row["interface_uuid"], row["mode"], row["ingress_passthrough"],
            row["egress_passthrough"]) == (vif["uuid"], "static", False, False)
    path = f"/filters/{row['uuid']}"
    updated = api.put(path, data={"ingress_passthrough": "true"}).json()
    assert (updated["ingress_passthrough"], updated["egress_passthrough"]) == (True, False)
    assert api.get(path).json() == updated
    for field, value in (("mode", "static"), ("interface_uuid", vif["uuid"])):
        refused(api, "PUT", path, 422, field, **{field: value})
    refused(api, "PUT", path, 422, "egress_passthrough", egress_passthrough="maybe")
    both = a_filter(api, vif, ingress_passthrough="true", egress_passthrough="true")
    assert (both["ingress_passthrough"], both["egress_passthrough"]) == (True, True)


@pytest.mark.parametrize("body,status,field", [
    ({"mode": "static"}, 422, "interface_uuid"),
    ({"interface_uuid": "if-nosuch", "mode": "static"}, 404, "interface_uuid"),
    ({"interface_uuid": "VIF"}, 422, "mode"),
    ({"interface_uuid": "VIF", "mode": "dynamic"}, 422, "mode"),
    ({"interface_uuid": "VIF", "mode": "static", "ingress_passthrough": "2"}, 422,
     "ingress_passthrough"),
    ({"interface_uuid": "VIF", "mode": "static", "passthrough": "true"}, 422, "passthrough"),
    ({"interface_uuid": "VIF", "mode": "static", "uuid": "fs-wrongprefix"}, 422, "uuid"),
])
def test_bad_filters_are_refused(api: Api, vif: dict[str, Any], body: dict[str, str],
                                 status: int, field: str) -> None:
    body = {k: vif["uuid"] if v == "VIF" else v for k, v in body.items()}
    refused(api, "POST", "/filters", status, field, **body)


def test_only_a_vif_has_filters(api: Api, vif: dict[str, Any]) -> None:
    router = api.create("interfaces", uuid=unique("if"), mode="simulated")
    refused(api, "POST", "/filters", 422, "interface_uuid", interface_uuid=router["uuid"],
            mode="static")
    a_filter(api, vif)
    refused(api, "PUT", f"/interfaces/{vif['uuid']}", 409, "mode", mode="host")


def test_static_entries(api: Api, vif: dict[str, Any]) -> None:
    fil = a_filter(api, vif)["uuid"]
    tcp = add_static(api, fil, protocol="tcp", passthrough="true")
    assert set(tcp) == STATIC_FIELDS
    assert (tcp["filter_uuid"], tcp["protocol"], tcp["ipv4_address"], tcp["ipv4_prefix"],
            tcp["port_number"], tcp["passthrough"]) == (fil, "tcp", "0.0.0.0", 0, 0, True)
    udp = add_static(api, fil, "static_filter", protocol="udp", ipv4_address="10.1.2.3/16",
                     port_number="53", passthrough="false")
    assert (udp["ipv4_address"], udp["ipv4_prefix"], udp["port_number"],
            udp["passthrough"]) == ("10.1.0.0", 16, 53, False)
    icmp = add_static(api, fil, protocol="icmp", ipv4_address="10.101.0.10",
                      passthrough="true")
    assert (icmp["ipv4_address"], icmp["ipv4_prefix"], icmp["port_number"]) == (
        "10.101.0.10", 32, None)
    for segment in ("static", "static_filter"):
        listed = api.get(f"/filters/{fil}/{segment}").json()["items"]
        assert [r["uuid"] for r in listed] == [tcp["uuid"], udp["uuid"], icmp["uuid"]]
        assert api.get(f"/filters/{fil}/{segment}/{udp['uuid']}").json() == udp
    # the same match again, whatever its passthrough: 409
    refused(api, "POST", f"/filters/{fil}/static_filter", 409, "protocol", protocol="tcp",
            ipv4_address="0.0.0.0/0", port_number="0", passthrough="false")
    refused(api, "POST", f"/filters/{fil}/static", 409, "protocol", protocol="icmp",
            ipv4_address="10.101.0.10/32", passthrough="true")


@pytest.mark.parametrize("body,field", [
    ({"passthrough": "true"}, "protocol"),
    ({"protocol": "sctp", "passthrough": "true"}, "protocol"),
    ({"protocol": "tcp"}, "passthrough"),
    ({"protocol": "tcp", "passthrough": "sometimes"}, "passthrough"),
    ({"protocol": "tcp", "port_number": "65536", "passthrough": "true"}, "port_number"),
    ({"protocol": "udp", "port_number": "-1", "passthrough": "true"}, "port_number"),
    ({"protocol": "icmp", "port_number": "0", "passthrough": "true"}, "port_number"),
    ({"protocol": "arp", "port_number": "1", "passthrough": "true"}, "port_number"),
    ({"protocol": "all", "port_number": "0", "passthrough": "true"}, "port_number"),
    ({"protocol": "tcp", "ipv4_address": "10.0.0.300", "passthrough": "true"}, "ipv4_address"),
    ({"protocol": "tcp", "ipv4_address": "10.0.0.0/33", "passthrough": "true"},
     "ipv4_address"),
    ({"protocol": "tcp", "passthrough": "true", "ipv4_prefix": "8"}, "ipv4_prefix"),
    ({"protocol": "tcp", "passthrough": "true", "filter_uuid": "fil-other"}, "filter_uuid"),
])
def test_bad_static_entries_are_refused(api: Api, vif: dict[str, Any], body: dict[str, str],
                                        field: str) -> None:
    fil = a_filter(api, vif)["uuid"]
    add_static(api, fil, protocol="tcp", port_number="22", passthrough="true")
    for segment in ("static", "static_filter"):
        refused(api, "POST", f"/filters/{fil}/{segment}", 422, field, **body)
    refused(api, "POST", "/filters/fil-nosuch/static", 404, "filter_uuid", protocol="tcp",
            passthrough="true")


def test_static_entries_are_deleted_by_uuid_or_by_their_parameters(api: Api,
                                                                  vif: dict[str, Any]) -> None:
    fil, other = a_filter(api, vif)["uuid"], a_filter(api, vif)["uuid"]
    ssh = add_static(api, fil, protocol="tcp", ipv4_address="10.0.0.0/8", port_number="22",
                     passthrough="true")
    arp = add_static(api, fil, protocol="arp", passthrough="true")
    # no entry matches: a 404, nothing deleted (OpenVNet: UnknownResource)
    path = f"/filters/{fil}/static"
    for body in ({"protocol": "tcp", "ipv4_address": "10.0.0.0/8", "port_number": "23",
                  "passthrough": "true"},
                 {"protocol": "tcp", "ipv4_address": "10.0.0.0/8", "port_number": "22",
                  "passthrough": "false"},
                 {"protocol": "udp", "ipv4_address": "10.0.0.0/8", "port_number": "22",
                  "passthrough": "true"}):
        refused(api, "DELETE", path, 404, None, **body)
    refused(api, "DELETE", path, 422, "passthrough", protocol="arp")
    refused(api, "DELETE", f"/filters/{other}/static/{ssh['uuid']}", 404, "uuid")
    refused(api, "DELETE", f"{path}/{ssh['uuid']}", 422, "protocol", protocol="tcp")
    deleted = api.delete(f"/filters/{fil}/static_filter", data={
        "protocol": "tcp", "ipv4_address": "10.1.2.3/8", "port_number": "22",
        "passthrough": "true"})
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == ssh
    assert api.delete(f"{path}/{arp['uuid']}").json() == arp
    assert api.get(path).json()["items"] == []


def test_deletes_take_filters_and_entries_along(api: Api, vif: dict[str, Any]) -> None:
    first, second = a_filter(api, vif)["uuid"], a_filter(api, vif)["uuid"]
    entries = [add_static(api, fil, protocol="all", passthrough="true")["uuid"]
               for fil in (first, second)]
    assert api.delete(f"/filters/{first}").status_code == 200
    assert api.get(f"/filters/{first}/static").status_code == 404
    assert api.get("/filters", params={"interface_uuid": vif["uuid"]}).json()["total_count"] \
        == 1
    assert api.delete(f"/interfaces/{vif['uuid']}").status_code == 200
    assert api.get(f"/filters/{second}").status_code == 404
    assert not set(entries) & set(api.snapshot()["model"]["filter_statics"])


def test_openvnet_filter_dataset(api: Api) -> None:
    """filter.yml (integration_test/dataset in axsh/openvnet) as vnspec loads it."""
    net = api.create("networks", uuid=unique("nw"), ipv4_network="10.101.0.0",
                     ipv4_prefix=24, network_mode="virtual")
    filters = []
    for i in range(4):
        iface = api.create("interfaces", uuid=unique("if"), port_name=f"if-v{i + 1}",
                           network_uuid=net["uuid"], mac_address=f"02:00:00:00:1{i}:01",
                           enable_filtering=True, ipv4_address=f"10.101.0.{10 + i}")
        filters.append(api.create("filters", uuid=unique("fil"),
                                  interface_uuid=iface["uuid"], mode="static")["uuid"])
    entries = [
        (0, {"protocol": "tcp", "passthrough": True, "ipv4_address": "0.0.0.0/0",
             "port_number": 0}),
        (0, {"protocol": "udp", "ipv4_address": "0.0.0.0/0", "port_number": 0,
             "passthrough": True}),
        (0, {"protocol": "icmp", "ipv4_address": "0.0.0.0/0", "passthrough": True}),
        (0, {"protocol": "arp", "passthrough": True}),
        (2, {"protocol": "tcp", "ipv4_address": "10.101.0.10", "port_number": 0,
             "passthrough": True}),
        (2, {"protocol": "udp", "ipv4_address": "10.101.0.13", "port_number": 1344,
             "passthrough": True}),
        (2, {"protocol": "udp", "ipv4_address": "0.0.0.0/0", "port_number": 68,
             "passthrough": True}),
        (2, {"protocol": "icmp", "ipv4_address": "10.101.0.10", "passthrough": True}),
        (3, {"protocol": "all", "ipv4_address": "10.101.0.10", "passthrough": True}),
        (3, {"protocol": "arp", "passthrough": True}),
    ]
    for index, body in entries:
        response = api.post(f"/filters/{filters[index]}/static", json=body)
        assert response.status_code == 201, (body, response.text)
    all_ = api.get(f"/filters/{filters[3]}/static").json()["items"][0]
    assert (all_["protocol"], all_["ipv4_address"], all_["ipv4_prefix"]) == (
        "all", "10.101.0.10", 32)
