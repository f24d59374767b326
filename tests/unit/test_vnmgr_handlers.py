"""vnmgr.handlers without processes: join hooks, derived values, the interface reply."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session
from vnmgr_kit import call, refused

from vnet import models as m
from vnet.interface_rows import interface_row
from vnmgr.handlers import HANDLERS, Tx
from vnmgr.handlers.joins import JOINS, End, JoinSpec, create_handler
from vnmgr.params import Params


def test_every_join_has_create_and_delete() -> None:
    for spec in JOINS:
        assert {("create", spec.resource), ("delete", spec.resource)} <= set(HANDLERS)


def test_params_are_read_only() -> None:
    params = Params({"ipv4_network": "10.0.0.0/8"})
    with pytest.raises(TypeError):
        params.raw["ipv4_network"] = "10.0.0.0"  # type: ignore[index]


def test_prepare_hooks_run_in_order_after_both_ends(session: Session) -> None:
    call(session, "create", "interfaces", uuid="if-a")
    call(session, "create", "security_groups", uuid="sg-a")
    seen: list[tuple[str, int, int]] = []

    def hook(name: str) -> Any:
        def prepare(_tx: Tx, join: Any, _params: Params) -> None:
            seen.append((name, join.interface_id, join.security_group_id))
        return prepare

    spec = JoinSpec("interface_security_groups", m.InterfaceSecurityGroup,
                    End("interface_uuid", m.Interface, "interface_id"),
                    End("security_group_uuid", m.SecurityGroup, "security_group_id"),
                    prepare=(hook("first"), hook("second")))
    row = create_handler(spec)(Tx(session), None,
                               Params({"interface_uuid": "if-a", "security_group_uuid": "sg-a"}))
    # Both ends are set before the first hook runs; the hooks run in declared order.
    assert seen == [("first", 1, 1), ("second", 1, 1)]
    assert (row["interface_uuid"], row["security_group_uuid"]) == ("if-a", "sg-a")


def test_a_hook_refuses_the_join(session: Session) -> None:
    call(session, "create", "datapaths", uuid="dp-a", dpid="1", node_id="n")
    call(session, "create", "networks", uuid="nw-a", ipv4_network="10.0.0.0")
    error = refused(session, "create", "datapath_networks", datapath_uuid="dp-a",
                    network_uuid="nw-a", broadcast_mac_address="01:00:00:00:00:01")
    assert (error.status, error.field) == (422, "broadcast_mac_address")
    error = refused(session, "create", "datapath_networks", datapath_uuid="dp-a",
                    network_uuid="nw-a", interface_uuid="if-none")
    assert (error.status, error.field) == (404, "interface_uuid")


def test_join_hooks_fill_their_own_columns(session: Session) -> None:
    call(session, "create", "datapaths", uuid="dp-a", dpid="1", node_id="n")
    call(session, "create", "route_links", uuid="rl-a")
    call(session, "create", "interfaces", uuid="if-host", mode="host")
    row = call(session, "create", "datapath_route_links", datapath_uuid="dp-a",
               route_link_uuid="rl-a", mac_address="02:00:00:00:00:09",
               interface_uuid="if-host")
    assert (row["mac_address"], row["interface_uuid"]) == ("02:00:00:00:00:09", "if-host")
    error = refused(session, "create", "datapath_route_links", datapath_uuid="dp-a",
                    route_link_uuid="rl-a")
    assert (error.status, error.field) == (409, "route_link_uuid")


@pytest.mark.parametrize(("given", "expected"), [
    ({"ipv4_network": "10.1.0.0/16"}, ("10.1.0.0", 16)),
    ({"ipv4_network": "10.1.0.0/8", "ipv4_prefix": "16"}, ("10.1.0.0", 16)),
    ({"ipv4_network": "10.1.2.0"}, ("10.1.2.0", 24)),
])
def test_network_prefix_is_derived(session: Session, given: dict[str, str],
                                   expected: tuple[str, int]) -> None:
    row = call(session, "create", "networks", **given)
    assert (row["ipv4_network"], row["ipv4_prefix"]) == expected


@pytest.mark.parametrize(("given", "expected"), [
    ({}, ("10.1.0.0", 16)),
    ({"ipv4_prefix": "20"}, ("10.1.0.0", 20)),
    ({"ipv4_network": "10.1.0.0"}, ("10.1.0.0", 16)),
    ({"ipv4_network": "10.2.0.0"}, ("10.2.0.0", 24)),
    ({"ipv4_network": "10.2.0.0/8", "ipv4_prefix": "16"}, ("10.2.0.0", 16)),
])
def test_route_destination_defaults_to_its_network(session: Session, given: dict[str, str],
                                                   expected: tuple[str, int]) -> None:
    call(session, "create", "networks", uuid="nw-a", ipv4_network="10.1.0.0/16")
    call(session, "create", "interfaces", uuid="if-r", mode="simulated", network_uuid="nw-a",
         enable_routing="true")
    call(session, "create", "route_links", uuid="rl-a")
    row = call(session, "create", "routes", interface_uuid="if-r", route_link_uuid="rl-a",
               **given)
    assert (row["ipv4_network"], row["ipv4_prefix"]) == expected


def test_route_refuses_a_slash_without_ipv4_prefix(session: Session) -> None:
    call(session, "create", "networks", uuid="nw-a", ipv4_network="10.1.0.0/16")
    call(session, "create", "interfaces", uuid="if-r", mode="simulated", network_uuid="nw-a",
         enable_routing="true")
    call(session, "create", "route_links", uuid="rl-a")
    error = refused(session, "create", "routes", interface_uuid="if-r",
                    route_link_uuid="rl-a", ipv4_network="10.1.0.0/16")
    assert (error.status, error.field) == (422, "ipv4_network")


def test_interface_writes_answer_in_the_shape_of_get(session: Session) -> None:
    call(session, "create", "networks", uuid="nw-a", ipv4_network="10.0.0.0")
    created = call(session, "create", "interfaces", uuid="if-a", network_uuid="nw-a",
                   mac_address="02:00:00:00:00:01", ipv4_address="10.0.0.5")
    updated = call(session, "update", "interfaces", "if-a", display_name="web")
    session.commit()
    shown = interface_row(session, session.query(m.Interface).one())
    assert updated == shown
    assert {**created, "display_name": "web", "updated_at": None} == \
        {**shown, "updated_at": None}
    assert shown["mac_leases"][0]["ip_leases"][0]["ipv4_address"] == "10.0.0.5"
    assert (shown["mac_address"], shown["ipv4_address"], shown["network_uuid"]) == \
        ("02:00:00:00:00:01", "10.0.0.5", "nw-a")
    deleted = call(session, "delete", "interfaces", "if-a")
    assert (deleted["uuid"], deleted["mac_leases"], deleted["ipv4_address"]) == \
        ("if-a", [], None)


def test_a_network_without_segment_takes_a_free_one(session: Session) -> None:
    """The id is the default tunnel key; when a user already gave that key to another
    network, the next free one is taken (not a 409 on a field the user never sent)."""
    first = call(session, "create", "networks", ipv4_network="10.1.0.0/24", segment_id="2")
    second = call(session, "create", "networks", ipv4_network="10.2.0.0/24")
    assert first["segment_id"] == 2 and second["id"] == 2
    assert second["segment_id"] == 3
