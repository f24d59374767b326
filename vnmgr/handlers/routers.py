"""The distributed router: route links (a router's MAC) and routes (a network on one)."""

from __future__ import annotations

from sqlalchemy import select

from vnet import models as m
from vnet.addr import format_ipv4
from vnet.errors import conflict, invalid
from vnet.registry import ROUTE_PREFIX
from vnet.serialize import Row
from vnmgr.handlers.networks import (
    DEFAULT_PREFIX,
    check_host_address,
    first_address,
    network_address,
)
from vnmgr.handlers.router_ports import check_physical_route
from vnmgr.handlers.tx import Tx, apply_booleans, apply_text, handler, text_update
from vnmgr.params import Params


@handler("create", "route_links")
def create_route_link(tx: Tx, _uuid: str | None, params: Params) -> Row:
    link = m.RouteLink(uuid=tx.new_uuid("route_links", params),
                       display_name=params.text("display_name"), mac_address=tx.unique_mac(params))
    return tx.row(tx.changes.add(link))


text_update("route_links", m.RouteLink, "display_name")


@handler("delete", "route_links")
def delete_route_link(tx: Tx, uuid: str | None, _params: Params) -> Row:
    """Takes its datapath joins along; raises ApiError(409, None) while routes or
    translation static addresses use it."""
    link = tx.get(m.RouteLink, uuid)
    statics = m.TranslationStaticAddress
    tx.refuse_if_used(link.uuid, {"routes": (m.Route, m.Route.route_link_id == link.id),
                                  "translation static addresses": (
                                      statics, statics.route_link_id == link.id)})
    tx.delete_where(m.DatapathRouteLink, m.DatapathRouteLink.route_link_id == link.id)
    return tx.changes.delete(link)


def _route_network(tx: Tx, params: Params, interface: m.Interface) -> m.Network:
    """`network_uuid`, else the network of the interface's first ip lease; raises
    ApiError(422, "network_uuid") when neither exists."""
    network = tx.ref(m.Network, params, "network_uuid", required=False)
    if network is not None:
        return network
    lease = tx.session.scalar(select(m.IpLease).where(m.IpLease.interface_id == interface.id))
    if lease is None:
        raise invalid("network_uuid", "network_uuid is required: the interface has no address")
    return tx.session.get(m.Network, lease.network_id)


def _destination(params: Params, network: m.Network) -> tuple[int, int]:
    """The route's (address, prefix), defaulting to its network: without ipv4_network the
    network's address, and without ipv4_prefix on that address the network's prefix.
    Errors as networks.network_address."""
    if params.has("ipv4_network"):
        if params.has("ipv4_prefix"):
            return network_address(params, ROUTE_PREFIX)
        # Read whole, as before the split: "a.b.c.d/nn" without ipv4_prefix is refused.
        address = params.ipv4("ipv4_network")
        prefix = network.ipv4_prefix if address == network.ipv4_network else DEFAULT_PREFIX
    else:
        address = network.ipv4_network
        given = params.integer("ipv4_prefix", low=ROUTE_PREFIX[0], high=ROUTE_PREFIX[1])
        prefix = network.ipv4_prefix if given is None else given
    return first_address(address, prefix)


def _check_router_port(tx: Tx, interface: m.Interface, network: m.Network) -> None:
    """raises ApiError(422, "interface_uuid") unless the interface can be a router port
    (mode=simulated with enable_routing: the vna ignores a route through anything
    else), ApiError(422, "network_uuid") when it has no address on the route's network
    (the port's gateway address on it)."""
    if interface.mode != "simulated" or not interface.enable_routing:
        raise invalid("interface_uuid", f"{interface.uuid} is not a router port: a route's "
                                        "interface must have mode=simulated and "
                                        "enable_routing=true")
    if not tx.exists(m.IpLease, m.IpLease.interface_id == interface.id,
                     m.IpLease.network_id == network.id):
        raise invalid("network_uuid", f"{interface.uuid} has no address on {network.uuid}")


def _gateway(tx: Tx, params: Params, route: m.Route) -> int | None:
    """`ipv4_gateway`: the next hop, a host address of the route's network other than
    its router port's own; raises ApiError(422, "ipv4_gateway") otherwise (see
    networks.check_host_address)."""
    gateway = params.ipv4("ipv4_gateway")
    if gateway is None:
        return None
    network = tx.session.get(m.Network, route.network_id)
    if network.network_mode != "physical":
        # Every address of a virtual network is in the model and routed to directly; a
        # next hop is a host outside the model, on a physical segment.
        raise invalid("ipv4_gateway", f"{network.uuid} is a virtual network: a next hop "
                                      "is only for routes onto a physical network")
    check_host_address("ipv4_gateway", gateway, network)
    if tx.exists(m.IpLease, m.IpLease.interface_id == route.interface_id,
                 m.IpLease.network_id == network.id, m.IpLease.ipv4_address == gateway):
        raise invalid("ipv4_gateway", f"{format_ipv4(gateway)} is the router port's own "
                                      "address: the gateway is the next router")
    return gateway


def _check_destination_free(tx: Tx, link: m.RouteLink, address: int, prefix: int) -> None:
    """raises ApiError(409, "ipv4_network") when a route of the link already has this
    destination: two networks with one subnet on one router (or the same route twice)
    would leave which one gets the traffic to chance. Nested prefixes are fine: the
    longest prefix wins, which is what a default route next to connected ones needs."""
    other = tx.session.scalar(select(m.Route).where(
        m.Route.route_link_id == link.id, m.Route.ipv4_network == address,
        m.Route.ipv4_prefix == prefix))
    if other is not None:
        raise conflict("ipv4_network", f"{format_ipv4(address)}/{prefix} is already routed "
                                       f"on {link.uuid} by {other.uuid}")


@handler("create", "routes")
def create_route(tx: Tx, _uuid: str | None, params: Params) -> Row:
    """Errors: see _route_network, _destination, _check_router_port,
    router_ports.check_physical_route, _gateway and _check_destination_free."""
    uuid = tx.new_uuid("routes", params)
    interface = tx.ref(m.Interface, params, "interface_uuid")
    link = tx.ref(m.RouteLink, params, "route_link_uuid")
    network = _route_network(tx, params, interface)
    address, prefix = _destination(params, network)
    _check_router_port(tx, interface, network)
    check_physical_route(interface, network)
    route = m.Route(uuid=uuid, display_name=params.text("display_name"),
                    interface_id=interface.id, route_link_id=link.id, network_id=network.id,
                    ipv4_network=address, ipv4_prefix=prefix,
                    ingress=params.boolean("ingress", True), egress=params.boolean("egress", True))
    route.ipv4_gateway = _gateway(tx, params, route)
    _check_destination_free(tx, link, address, prefix)
    return tx.row(tx.changes.add(route))


@handler("update", "routes")
def update_route(tx: Tx, uuid: str | None, params: Params) -> Row:
    """An empty ipv4_gateway clears it; errors: see _gateway."""
    route = tx.get(m.Route, uuid)
    apply_text(route, params, "display_name")
    apply_booleans(route, params, "ingress", "egress")
    if params.has("ipv4_gateway"):
        route.ipv4_gateway = _gateway(tx, params, route)
    elif params.clears("ipv4_gateway"):
        route.ipv4_gateway = None
    return tx.row(tx.changes.touch(route))


@handler("delete", "routes")
def delete_route(tx: Tx, uuid: str | None, _params: Params) -> Row:
    return tx.changes.delete(tx.get(m.Route, uuid))
