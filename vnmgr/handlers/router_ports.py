"""What a router port (mode simulated with enable_routing) must keep while routes and
translations use it, and what a port on a physical network needs: an owner datapath
(OpenVNet's router_p2v and wanedge datasets give theirs one, so one datapath answers
ARP and routes for its MAC on the shared segment)."""

from __future__ import annotations

from sqlalchemy import select

from vnet import models as m
from vnet.errors import conflict, invalid
from vnmgr.handlers.tx import Tx
from vnmgr.params import Params

ROUTE_TRANSLATION = "enable_route_translation"


def is_router_port(interface: m.Interface) -> bool:
    return interface.mode == "simulated" and bool(interface.enable_routing)


def physical_networks(tx: Tx, interface: m.Interface) -> list[m.Network]:
    """The network_mode=physical networks the interface has addresses on, in lease
    order."""
    return list(tx.session.scalars(
        select(m.Network).join(m.IpLease, m.IpLease.network_id == m.Network.id)
        .where(m.IpLease.interface_id == interface.id, m.Network.network_mode == "physical")
        .order_by(m.IpLease.id)).unique())


def check_physical_route(interface: m.Interface, network: m.Network) -> None:
    """raises ApiError(422, "interface_uuid") when a route's network is physical and
    its port has no owner_datapath_uuid."""
    if network.network_mode == "physical" and interface.owner_datapath_id is None:
        raise invalid("interface_uuid", f"{interface.uuid} has no owner_datapath_uuid: a "
                                        f"router port on physical network {network.uuid} "
                                        "needs the datapath holding that segment's port")


def check_route_translation(interface: m.Interface, params: Params) -> None:
    """Only a router port translates: raises ApiError(422, "enable_route_translation")
    when this request turns the flag on for another interface, ApiError(409, "mode" or
    "enable_routing") when it stops a port whose flag is on being a router port."""
    if is_router_port(interface) or not getattr(interface, ROUTE_TRANSLATION):
        return
    if params.has(ROUTE_TRANSLATION):
        raise invalid(ROUTE_TRANSLATION, f"{interface.uuid} is not a router port: "
                                         f"{ROUTE_TRANSLATION} needs mode=simulated and "
                                         "enable_routing=true")
    field = "mode" if interface.mode != "simulated" else "enable_routing"
    raise conflict(field, f"{interface.uuid} has {ROUTE_TRANSLATION}: turn it off first")


def _users(tx: Tx, interface: m.Interface) -> dict[str, str | None]:
    """The first route and the first translation using the interface (uuid or None),
    and its first route on a physical network."""
    def first(model: type[m.Route] | type[m.Translation], *where: object) -> str | None:
        return tx.session.scalar(select(model.uuid).where(
            model.interface_id == interface.id, *where).order_by(model.id))
    return {"route": first(m.Route), "translation": first(m.Translation),
            "physical route": first(m.Route, m.Route.network_id.in_(
                select(m.Network.id).where(m.Network.network_mode == "physical")))}


def keep_router_port(tx: Tx, interface: m.Interface) -> None:
    """raises ApiError(409, "mode" or "enable_routing") when routes or translations go
    through the interface and it would stop being a router port, ApiError(409,
    "owner_datapath_uuid") when a route on a physical network or a translation uses it
    and its owner is cleared."""
    if is_router_port(interface) and interface.owner_datapath_id is not None:
        return
    users = _users(tx, interface)
    if not is_router_port(interface):
        user = users["route"] or users["translation"]
        if user is not None:
            field = "mode" if interface.mode != "simulated" else "enable_routing"
            raise conflict(field, f"{interface.uuid} is the router port of {user}: delete "
                                  "it first")
    if interface.owner_datapath_id is None:
        user = users["physical route"] or users["translation"]
        if user is not None:
            raise conflict("owner_datapath_uuid", f"{interface.uuid} is a router port on a "
                                                  f"physical network ({user}): it needs its "
                                                  "owner datapath")
