"""vnmgr.accept: every write refuses a parameter it would ignore, derived from the registry."""

from __future__ import annotations

from typing import Any

import pytest

from vnet.errors import ApiError
from vnet.registry import RESOURCES, accepted
from vnmgr.accept import renamed, request_params
from vnmgr.handlers import HANDLERS


def refused(op: str, resource: str, raw: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        request_params(op, resource, raw)
    return caught.value


@pytest.mark.parametrize(("op", "resource", "raw", "field", "says"), [
    # A typo or a name of no version: named, with what the write does take.
    ("create", "networks", {"ipv4_netwrk": "10.0.0.0"}, "ipv4_netwrk", "ipv4_network"),
    ("create", "datapath_route_links", {"broadcast_mac_address": "02:00:00:00:00:01"},
     "broadcast_mac_address", "unknown"),
    # PUT of a field only POST sets (was a 200 that changed nothing).
    ("update", "interfaces", {"ipv4_address": "10.0.0.9"}, "ipv4_address", "PUT"),
    ("update", "interfaces", {"network_uuid": "nw-a"}, "network_uuid", "PUT"),
    ("update", "routes", {"ipv4_prefix": "16"}, "ipv4_prefix", "PUT"),
    ("update", "networks", {"ipv4_network": "10.0.0.0"}, "ipv4_network", "PUT"),
    ("update", "networks", {"mode": "physical"}, "mode", "PUT"),
    # Read-only columns, on PUT and on POST.
    ("update", "networks", {"uuid": "nw-b"}, "uuid", "read-only"),
    ("update", "datapaths", {"id": "7"}, "id", "read-only"),
    ("update", "routes", {"created_at": "2020-01-01T00:00:00Z"}, "created_at", "read-only"),
    ("create", "networks", {"ipv4_network": "10.0.0.0", "id": "3"}, "id", "read-only"),
    ("create", "interfaces", {"mac_leases": "[]"}, "mac_leases", "server"),
    # OpenVNet features not implemented here: refused, saying so.
    ("create", "interfaces", {"segment_uuid": "seg-1"}, "segment_uuid", "OpenVNet"),
    ("create", "datapaths", {"enable_ovs_learn_action": "false"}, "enable_ovs_learn_action",
     "OpenVNet"),
    ("create", "route_links", {"topology_uuid": "topo-1"}, "topology_uuid", "OpenVNet"),
    # Translations have no PUT; their static addresses are only added and deleted.
    ("update", "translations", {"passthrough": "true"}, "passthrough", "PUT"),
    # DELETE takes nothing but a join's two ends (its path).
    ("delete", "networks", {"force": "true"}, "force", "no parameters"),
    ("delete", "datapath_networks", {"datapath_uuid": "dp-a", "network_uuid": "nw-a",
                                     "interface_uuid": "if-a"}, "interface_uuid", "DELETE"),
    # An alias and the field it names, both given.
    ("create", "datapath_networks", {"mac_address": "02:00:00:00:00:01",
                                     "broadcast_mac_address": "02:00:00:00:00:01"},
     "broadcast_mac_address", "same field"),
    # Empty on PUT clears; a field without a null value cannot be cleared.
    ("update", "datapaths", {"node_id": ""}, "node_id", "empty"),
    ("update", "interfaces", {"mode": None}, "mode", "empty"),
    ("update", "routes", {"ingress": ""}, "ingress", "empty"),
])
def test_a_parameter_the_write_would_ignore_is_422_naming_it(
        op: str, resource: str, raw: dict[str, Any], field: str, says: str) -> None:
    error = refused(op, resource, raw)
    assert (error.status, error.field) == (422, field)
    assert says in error.message


def test_a_body_that_is_not_an_object_is_a_bad_request() -> None:
    assert refused("create", "networks", ["a"]).status == 400


@pytest.mark.parametrize(("resource", "raw", "ours", "sent_as"), [
    # OpenVNet 0.9+'s name of the datapath network's MAC (its datasets use it).
    ("datapath_networks", {"mac_address": "02:aa:00:00:00:01"},
     {"broadcast_mac_address": "02:aa:00:00:00:01"}, {"broadcast_mac_address": "mac_address"}),
    ("networks", {"ipv4_network": "10.0.0.0", "mode": "physical"},
     {"ipv4_network": "10.0.0.0", "network_mode": "physical"}, {"network_mode": "mode"}),
    ("networks", {"ipv4_network": "10.0.0.0", "network_mode": "virtual"},
     {"ipv4_network": "10.0.0.0", "network_mode": "virtual"}, {}),
])
def test_openvnet_names_are_read_as_our_fields(resource: str, raw: dict[str, Any],
                                               ours: dict[str, Any],
                                               sent_as: dict[str, str]) -> None:
    assert request_params("create", resource, raw) == (ours, sent_as)


def test_an_error_blames_the_name_the_client_sent() -> None:
    error = renamed(ApiError(422, "bad", "broadcast_mac_address"),
                    {"broadcast_mac_address": "mac_address"})
    assert error.field == "mac_address"
    assert renamed(ApiError(404, "x", "uuid"), {}).field == "uuid"


def test_empty_values_pass_on_create_and_clear_nullable_fields_on_update() -> None:
    assert request_params("create", "networks", {"ipv4_network": "10.0.0.0",
                                                 "domain_name": ""})[0]["domain_name"] == ""
    raw = {"display_name": "", "domain_name": None}
    assert request_params("update", "networks", raw) == (raw, {})


def test_query_and_path_parameters_of_joins_are_accepted() -> None:
    raw = {"datapath_uuid": "dp-a", "network_uuid": "nw-a"}
    assert request_params("delete", "datapath_networks", raw) == (raw, {})
    assert request_params("delete", "networks", {}) == ({}, {})
    assert request_params("delete", "networks", None) == ({}, {})


@pytest.mark.parametrize(("op", "resource"), sorted(HANDLERS), ids=lambda x: str(x))
def test_every_handler_accepts_a_known_set(op: str, resource: str) -> None:
    names = accepted(op, resource)
    fields = {f.name for f in RESOURCES[resource].all_fields()}
    assert names <= fields
    if op == "create":
        assert "uuid" in names
    if op == "update":
        assert names and not names & {"uuid", "id", "created_at", "updated_at"}


def test_an_agents_op_is_no_api_write_and_passes_whole() -> None:
    raw = {"datapath_uuid": "dp-a", "ports": [{"port_name": "tap0"}]}
    assert request_params("report", "active_interfaces", raw) == (raw, {})


def test_both_names_of_one_field_are_named_as_sent_and_an_empty_alias_is_not_given() -> None:
    error = refused("create", "networks", {"mode": "virtual", "network_mode": "virtual"})
    assert error.field == "network_mode" and "mode and network_mode" in error.message
    params, _ = request_params("create", "datapath_networks",
                               {"mac_address": None, "broadcast_mac_address": "02:00:00:00:00:01"})
    assert params["broadcast_mac_address"] == "02:00:00:00:00:01"
