"""vnmgr's handlers refuse what the data plane would not do, and accept what OpenVNet does."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session
from vnmgr_kit import call, refused

from vnmgr.handlers import HANDLERS, Tx
from vnmgr.params import Params


@pytest.fixture
def router(session: Session) -> Session:
    """nw-a 10.1.0.0/24 and nw-b 10.2.0.0/24 joined by router ports if-ra/if-rb, link rl-a;
    if-vm a plain vif on nw-a."""
    for name, net in (("a", "10.1.0.0/24"), ("b", "10.2.0.0/24")):
        call(session, "create", "networks", uuid=f"nw-{name}", ipv4_network=net)
        call(session, "create", "interfaces", uuid=f"if-r{name}", mode="simulated",
             enable_routing="true", network_uuid=f"nw-{name}")
    call(session, "create", "interfaces", uuid="if-vm", network_uuid="nw-a")
    call(session, "create", "route_links", uuid="rl-a")
    return session


def route(session: Session, **params: Any) -> dict[str, Any]:
    return call(session, "create", "routes", route_link_uuid="rl-a", **params)


def test_a_default_route_is_accepted(router: Session) -> None:
    # OpenVNet's routes take prefixes 0..32; networks 1..32.
    row = route(router, interface_uuid="if-rb", ipv4_network="0.0.0.0", ipv4_prefix="0")
    assert (row["ipv4_network"], row["ipv4_prefix"], row["network_uuid"]) == \
        ("0.0.0.0", 0, "nw-b")
    error = refused(router, "create", "networks", ipv4_network="0.0.0.0", ipv4_prefix="0")
    assert (error.status, error.field) == (422, "ipv4_prefix")
    error = refused(router, "create", "routes", route_link_uuid="rl-a", interface_uuid="if-ra",
                    ipv4_network="10.0.0.0", ipv4_prefix="0")
    assert (error.status, error.field) == (422, "ipv4_network")  # host bits under /0


def test_nested_prefixes_share_a_route_link(router: Session) -> None:
    # Longest prefix wins: connected routes next to a default route is the common case.
    route(router, interface_uuid="if-ra")
    route(router, interface_uuid="if-rb")
    route(router, interface_uuid="if-rb", ipv4_network="0.0.0.0", ipv4_prefix="0")
    route(router, interface_uuid="if-rb", ipv4_network="10.1.0.128", ipv4_prefix="25")


@pytest.mark.parametrize("second", [
    {"interface_uuid": "if-ra"},  # the same route again
    {"interface_uuid": "if-rb", "network_uuid": "nw-b", "ipv4_network": "10.1.0.0",
     "ipv4_prefix": "24"},  # another network claiming the same subnet on the link
])
def test_one_destination_per_route_link(router: Session, second: dict[str, str]) -> None:
    first = route(router, interface_uuid="if-ra")
    error = refused(router, "create", "routes", route_link_uuid="rl-a", **second)
    assert (error.status, error.field) == (409, "ipv4_network")
    assert first["uuid"] in error.message


def test_same_subnets_on_two_route_links_are_fine(router: Session) -> None:
    call(router, "create", "networks", uuid="nw-c", ipv4_network="10.1.0.0/24")
    call(router, "create", "interfaces", uuid="if-rc", mode="simulated", enable_routing="1",
         network_uuid="nw-c")
    call(router, "create", "route_links", uuid="rl-b")
    route(router, interface_uuid="if-ra")
    call(router, "create", "routes", route_link_uuid="rl-b", interface_uuid="if-rc")


@pytest.mark.parametrize(("interface", "params", "field"), [
    ("if-vm", {}, "interface_uuid"),  # a plain vif
    ("if-ra", {"network_uuid": "nw-b"}, "network_uuid"),  # no address on nw-b
])
def test_a_route_needs_a_router_port_on_its_network(router: Session, interface: str,
                                                    params: dict[str, str], field: str) -> None:
    error = refused(router, "create", "routes", route_link_uuid="rl-a",
                    interface_uuid=interface, **params)
    assert (error.status, error.field) == (422, field)


def test_a_simulated_interface_without_routing_is_no_router_port(router: Session) -> None:
    call(router, "create", "interfaces", uuid="if-dhcp", mode="simulated", network_uuid="nw-a")
    error = refused(router, "create", "routes", route_link_uuid="rl-a", interface_uuid="if-dhcp")
    assert (error.status, error.field) == (422, "interface_uuid")


@pytest.mark.parametrize(("change", "field"), [
    ({"mode": "vif"}, "mode"), ({"enable_routing": "false"}, "enable_routing")])
def test_a_routed_interface_stays_a_router_port(router: Session, change: dict[str, str],
                                                field: str) -> None:
    route(router, interface_uuid="if-ra")
    error = refused(router, "update", "interfaces", "if-ra", **change)
    assert (error.status, error.field) == (409, field)


def test_port_name_is_unique_per_datapath(session: Session) -> None:
    for dp in ("dp-a", "dp-b"):
        call(session, "create", "datapaths", uuid=dp, dpid=dp[-1], node_id=dp)
    call(session, "create", "interfaces", uuid="if-a", owner_datapath_uuid="dp-a",
         port_name="tap0")
    # Another datapath, or no owner (OpenVNet's datasets leave it out), is fine.
    call(session, "create", "interfaces", uuid="if-b", owner_datapath_uuid="dp-b",
         port_name="tap0")
    call(session, "create", "interfaces", uuid="if-c", port_name="tap0")
    error = refused(session, "create", "interfaces", uuid="if-d", owner_datapath_uuid="dp-a",
                    port_name="tap0")
    assert (error.status, error.field) == (409, "port_name")
    error = refused(session, "update", "interfaces", "if-b", owner_datapath_uuid="dp-a")
    assert (error.status, error.field) == (409, "port_name")
    call(session, "create", "interfaces", uuid="if-e", owner_datapath_uuid="dp-a",
         port_name="tap1")
    error = refused(session, "update", "interfaces", "if-e", port_name="tap0")
    assert (error.status, error.field) == (409, "port_name")


@pytest.mark.parametrize(("prefix", "addresses"), [
    # RFC 3021 §2.1: both addresses of a /31 are hosts; a /32's one address is its host.
    (31, ["10.9.0.0", "10.9.0.1"]),
    (32, ["10.9.0.0"]),
    (30, ["10.9.0.1", "10.9.0.2"]),
    (29, ["10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"]),  # .1: gateway
])
def test_small_networks_allocate_every_host_address(session: Session, prefix: int,
                                                    addresses: list[str]) -> None:
    call(session, "create", "networks", uuid="nw-p", ipv4_network=f"10.9.0.0/{prefix}")
    got = [call(session, "create", "interfaces", network_uuid="nw-p")["ipv4_address"]
           for _ in addresses]
    assert got == addresses
    error = refused(session, "create", "interfaces", network_uuid="nw-p")
    assert (error.status, error.field) == (409, "ipv4_address")


@pytest.mark.parametrize(("prefix", "good", "bad"), [
    (31, ["10.9.0.0", "10.9.0.1"], []),
    (32, ["10.9.0.0"], []),
    (30, ["10.9.0.1", "10.9.0.2"], ["10.9.0.0", "10.9.0.3"]),
])
def test_manual_addresses_agree_with_allocation(session: Session, prefix: int,
                                                good: list[str], bad: list[str]) -> None:
    call(session, "create", "networks", uuid="nw-p", ipv4_network=f"10.9.0.0/{prefix}")
    for address in good:
        call(session, "create", "interfaces", network_uuid="nw-p", ipv4_address=address)
    for address in bad:
        error = refused(session, "create", "interfaces", network_uuid="nw-p",
                        ipv4_address=address)
        assert (error.status, error.field) == (422, "ipv4_address")


@pytest.mark.parametrize("mac", ["00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff", "01:00:5e:00:00:01"])
def test_no_zero_or_multicast_mac(session: Session, mac: str) -> None:
    error = refused(session, "create", "route_links", mac_address=mac)
    assert (error.status, error.field) == (422, "mac_address")


@pytest.mark.parametrize("dpid", ["0x0000aaaaaaaaaaab", "0000aaaaaaaaaaab",
                                  "00:00:aa:aa:aa:aa:aa:ab", 0xAAAAAAAAAAAB])
def test_dpid_forms_are_stored_in_one_form(session: Session, dpid: Any) -> None:
    row = call(session, "create", "datapaths", dpid=dpid, node_id="n")
    assert row["dpid"] == "0x0000aaaaaaaaaaab"
    error = refused(session, "create", "datapaths", dpid="0X0000AAAAAAAAAAAB", node_id="m")
    assert (error.status, error.field) == (409, "dpid")


def test_an_empty_value_clears_a_nullable_field(session: Session) -> None:
    call(session, "create", "datapaths", uuid="dp-a", dpid="1", node_id="n")
    call(session, "create", "networks", uuid="nw-a", ipv4_network="10.0.0.0",
         display_name="net", domain_name="example")
    row = call(session, "update", "networks", "nw-a", display_name="", domain_name=None)
    assert (row["display_name"], row["domain_name"]) == (None, None)
    call(session, "create", "interfaces", uuid="if-a", owner_datapath_uuid="dp-a",
         port_name="tap0")
    row = call(session, "update", "interfaces", "if-a", owner_datapath_uuid="", port_name="")
    assert (row["owner_datapath_uuid"], row["port_name"]) == (None, None)


def test_an_update_to_the_same_values_changes_nothing(session: Session) -> None:
    call(session, "create", "networks", uuid="nw-a", ipv4_network="10.0.0.0",
         display_name="net")
    call(session, "create", "datapaths", uuid="dp-a", dpid="1", node_id="n")
    session.commit()
    for resource, uuid, params in (("networks", "nw-a", {"display_name": "net"}),
                                   ("datapaths", "dp-a", {"dpid": "0x1", "node_id": "n"}),
                                   ("networks", "nw-a", {})):
        assert changes_of_update(session, resource, uuid, params) == [], (resource, params)
    changes = changes_of_update(session, "networks", "nw-a", {"display_name": "web"})
    assert [c["uuid"] for c in changes] == ["nw-a"]


def changes_of_update(session: Session, resource: str, uuid: str,
                      params: dict[str, Any]) -> list[dict[str, Any]]:
    """What vnmgr would publish for this update (an empty list publishes no event)."""
    tx = Tx(session)
    HANDLERS[("update", resource)](tx, uuid, Params(params))
    return tx.changes.changes()
