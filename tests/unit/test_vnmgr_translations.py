"""vnmgr's translation handlers without processes: the router port they need, the
global address leased for a static address and released with it, an explicit lease
taking it over, and routes' gateways."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from vnmgr_kit import call, refused

from vnet import models as m


@pytest.fixture
def port(session: Session) -> str:
    call(session, "create", "datapaths", uuid="dp-w", dpid="0xe", node_id="w")
    call(session, "create", "networks", uuid="nw-glo", ipv4_network="10.210.0.0",
         network_mode="physical")
    call(session, "create", "networks", uuid="nw-in", ipv4_network="10.101.0.0")
    call(session, "create", "interfaces", uuid="if-gw", mode="simulated", enable_routing="1",
         owner_datapath_uuid="dp-w", network_uuid="nw-glo", ipv4_address="10.210.0.4")
    call(session, "create", "translations", uuid="tr-s", interface_uuid="if-gw",
         mode="static_address")
    return "tr-s"


def leases(session: Session) -> dict[str, bool]:
    """The port's addresses on nw-glo -> enable_routing."""
    rows = session.scalars(select(m.IpLease).where(m.IpLease.network_id == select(
        m.Network.id).where(m.Network.uuid == "nw-glo").scalar_subquery())).all()
    return {f"10.210.0.{r.ipv4_address & 0xff}": r.enable_routing for r in rows}


def test_a_static_address_leases_and_releases_its_global_address(session: Session,
                                                                  port: str) -> None:
    row = call(session, "create", "translation_static_addresses", translation_uuid=port,
               ingress_ipv4_address="10.210.0.104", egress_ipv4_address="10.101.0.11")
    assert row["leased"] is True
    assert leases(session) == {"10.210.0.4": False, "10.210.0.104": True}
    call(session, "delete", "translation_static_addresses", row["uuid"], translation_uuid=port)
    assert leases(session) == {"10.210.0.4": False}


def test_an_explicit_lease_takes_the_address_over(session: Session, port: str) -> None:
    row = call(session, "create", "translation_static_addresses", translation_uuid=port,
               ingress_ipv4_address="10.210.0.104", egress_ipv4_address="10.101.0.11")
    mac = call(session, "create", "mac_leases", interface_uuid="if-gw")
    lease = call(session, "create", "ip_leases", mac_lease_uuid=mac["uuid"],
                 network_uuid="nw-glo", ipv4_address="10.210.0.104", enable_routing="true")
    assert (lease["interface_uuid"], lease["enable_routing"]) == ("if-gw", True)
    assert session.scalar(select(m.TranslationStaticAddress.leased)) is False
    call(session, "delete", "translations", port)
    assert leases(session) == {"10.210.0.4": False, "10.210.0.104": True}
    assert row["uuid"] not in {r.uuid for r in session.scalars(
        select(m.TranslationStaticAddress))}


def test_translations_need_a_router_port_on_a_physical_network(session: Session,
                                                               port: str) -> None:
    call(session, "create", "interfaces", uuid="if-in", mode="simulated", enable_routing="1",
         owner_datapath_uuid="dp-w", network_uuid="nw-in")
    error = refused(session, "create", "translations", interface_uuid="if-in", mode="snat")
    assert (error.status, error.field) == (422, "interface_uuid")
    assert "physical" in error.message
    error = refused(session, "update", "interfaces", "if-gw", mode="vif")
    assert (error.status, error.field) == (409, "mode")


def test_route_gateway_is_a_host_of_the_route_network(session: Session, port: str) -> None:
    call(session, "create", "route_links", uuid="rl-g")
    route = call(session, "create", "routes", interface_uuid="if-gw", route_link_uuid="rl-g",
                 ipv4_network="0.0.0.0", ipv4_prefix="0", ipv4_gateway="10.210.0.1")
    assert route["ipv4_gateway"] == "10.210.0.1"
    error = refused(session, "update", "routes", route["uuid"], ipv4_gateway="10.210.0.4")
    assert (error.status, error.field) == (422, "ipv4_gateway")
