"""A translation's static addresses (OpenVNet's POST/DELETE
/translations/:uuid/static_address, models/translation_static_address.rb): ingress is
the global address on the router port's physical network, egress the private one.

The global address is leased to the router port, as OpenVNet's wanedge dataset does by
hand (ip_leases on the port's MAC lease, enable_routing), so the port answers ARP for
it: a static address whose ingress address is not leased yet leases it in the same
transaction (`leased`), and deleting it releases that lease.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from vnet import models as m
from vnet.addr import format_ipv4
from vnet.errors import ApiError, conflict, invalid
from vnet.registry import NESTED, TRANSLATION_PORT
from vnet.serialize import Row
from vnmgr.handlers.leases import add_ip_lease, first_mac_lease
from vnmgr.handlers.networks import check_host_address, contains
from vnmgr.handlers.router_ports import physical_networks
from vnmgr.handlers.tx import Tx, handler
from vnmgr.params import Params

# The parameters that name a static address on DELETE /translations/<uuid>/static_address.
MATCH = next(n.delete_by for n in NESTED if n.resource == "translation_static_addresses")
PORTS = ("ingress_port_number", "egress_port_number")
Model = m.TranslationStaticAddress


@dataclass
class Static:
    """A static address as a request describes it."""

    translation: m.Translation
    interface: m.Interface
    network: m.Network  # the physical network of the ingress address
    columns: dict[str, Any]

    def describe(self) -> str:
        def end(side: str) -> str:
            port = self.columns[f"{side}_port_number"]
            address = format_ipv4(self.columns[f"{side}_ipv4_address"])
            return address + (f":{port}" if port else "")
        return f"{end('ingress')} <-> {end('egress')}"


def _translation(tx: Tx, params: Params) -> m.Translation:
    """raises ApiError(404, "translation_uuid") when unknown, ApiError(422,
    "translation_uuid") unless mode static_address (OpenVNet's ArgumentError)."""
    row = tx.ref(m.Translation, params, "translation_uuid")
    if row.mode != "static_address":
        raise invalid("translation_uuid", f"{row.uuid} is mode {row.mode}: static addresses "
                                          "need mode static_address")
    return row


def _ingress_network(tx: Tx, interface: m.Interface, address: int) -> m.Network:
    """The physical network of the port that holds the address; raises ApiError(422,
    "ingress_ipv4_address") when none does, or it is that network's network or
    broadcast address."""
    networks = physical_networks(tx, interface)
    network = next((n for n in networks if contains(n, address)), None)
    if network is None:
        subnets = ", ".join(f"{n.uuid} {format_ipv4(n.ipv4_network)}/{n.ipv4_prefix}"
                            for n in networks)
        raise invalid("ingress_ipv4_address", f"{format_ipv4(address)} is outside the "
                                              f"physical network of {interface.uuid} "
                                              f"({subnets})")
    check_host_address("ingress_ipv4_address", address, network)
    return network


def _ports(params: Params) -> tuple[int | None, int | None]:
    """(ingress, egress) port, both or neither; raises ApiError(422, the missing one)."""
    ingress, egress = (params.integer(name, low=TRANSLATION_PORT[0], high=TRANSLATION_PORT[1])
                       for name in PORTS)
    if (ingress is None) != (egress is None):
        missing, given = PORTS if ingress is None else PORTS[::-1]
        raise invalid(missing, f"{missing} is required with {given}: ports translate in "
                               "pairs")
    return ingress, egress


def _check_networks(tx: Tx, params: Params, network: m.Network, egress: int) -> None:
    """OpenVNet's echoed ingress_network_uuid and egress_network_uuid: raises
    ApiError(404, name) when unknown, ApiError(422, name) unless ingress is the physical
    network and egress a network holding egress_ipv4_address."""
    ingress_network = tx.ref(m.Network, params, "ingress_network_uuid", required=False)
    if ingress_network is not None and ingress_network.id != network.id:
        raise invalid("ingress_network_uuid", f"the ingress address is on {network.uuid}, "
                                              f"not {ingress_network.uuid}")
    egress_network = tx.ref(m.Network, params, "egress_network_uuid", required=False)
    if egress_network is not None and not contains(egress_network, egress):
        raise invalid("egress_network_uuid", f"{format_ipv4(egress)} is outside "
                                             f"{egress_network.uuid}")


def _static(tx: Tx, params: Params) -> Static:
    """The request's static address; errors: see _translation, _ingress_network, _ports,
    _check_networks; ApiError(422, "egress_ipv4_address") when it is not an address or
    is inside the physical network; ApiError(404, "route_link_uuid") when unknown."""
    translation = _translation(tx, params)
    interface = tx.session.get(m.Interface, translation.interface_id)
    ingress = params.ipv4("ingress_ipv4_address", required=True)
    egress = params.ipv4("egress_ipv4_address", required=True)
    network = _ingress_network(tx, interface, ingress)
    if contains(network, egress):
        raise invalid("egress_ipv4_address", f"{format_ipv4(egress)} is inside the physical "
                                             f"network {network.uuid}: the egress address is "
                                             "the private one")
    ingress_port, egress_port = _ports(params)
    _check_networks(tx, params, network, egress)
    link = tx.ref(m.RouteLink, params, "route_link_uuid", required=False)
    if link is not None and not tx.exists(m.Route, m.Route.route_link_id == link.id,
                                          m.Route.interface_id == interface.id):
        raise invalid("route_link_uuid", f"{link.uuid} is not the router of "
                                         f"{interface.uuid} (no route of it uses the port)")
    return Static(translation, interface, network, {
        "translation_id": translation.id, "route_link_id": link.id if link else None,
        "ingress_ipv4_address": ingress, "egress_ipv4_address": egress,
        "ingress_port_number": ingress_port, "egress_port_number": egress_port})


def _check_free(tx: Tx, static: Static) -> None:
    """raises ApiError(409, "ingress_ipv4_address") when any translation already maps
    this ingress address and port, ApiError(409, "egress_ipv4_address") when a
    translation of the same port already maps the egress address and port (the port's
    SNAT flow for it would be ambiguous)."""
    c = static.columns
    for field, columns in (
            ("ingress_ipv4_address", {"ingress_ipv4_address": c["ingress_ipv4_address"],
                                      "ingress_port_number": c["ingress_port_number"]}),
            ("egress_ipv4_address", {"egress_ipv4_address": c["egress_ipv4_address"],
                                     "egress_port_number": c["egress_port_number"]})):
        other = tx.session.scalar(
            select(Model).join(m.Translation, m.Translation.id == Model.translation_id)
            .where(*(getattr(Model, k) == v for k, v in columns.items()),
                   *([m.Translation.interface_id == static.interface.id]
                     if field == "egress_ipv4_address" else [])).order_by(Model.id))
        if other is not None:
            side = field.removesuffix("_ipv4_address")
            raise conflict(field, f"the {side} end of {static.describe()} is already "
                                  f"translated by {other.uuid}")


def _lease(tx: Tx, static: Static) -> bool:
    """Lease the ingress address to the port (on its first MAC lease, enable_routing)
    unless the port has it already: True when this leased it; raises ApiError(409,
    "ingress_ipv4_address") when another interface has it."""
    address, network = static.columns["ingress_ipv4_address"], static.network
    lease = tx.session.scalar(select(m.IpLease).where(
        m.IpLease.network_id == network.id, m.IpLease.ipv4_address == address))
    if lease is None:
        add_ip_lease(tx, static.interface, network, address,
                     first_mac_lease(tx, static.interface), routed=True)
        return True
    if lease.interface_id != static.interface.id:
        owner = tx.session.get(m.Interface, lease.interface_id)
        raise conflict("ingress_ipv4_address", f"{format_ipv4(address)} is leased to "
                                               f"{owner.uuid} on {network.uuid}")
    return False


def delete_static(tx: Tx, static: m.TranslationStaticAddress) -> Row:
    """Delete it, and release the lease it made: another static address of the same
    port and ingress address inherits it, else the lease is deleted."""
    if static.leased:
        translation = tx.session.get(m.Translation, static.translation_id)
        heir = tx.session.scalar(
            select(Model).join(m.Translation, m.Translation.id == Model.translation_id)
            .where(m.Translation.interface_id == translation.interface_id,
                   Model.ingress_ipv4_address == static.ingress_ipv4_address,
                   Model.id != static.id).order_by(Model.id))
        if heir is not None:
            heir.leased = True
            tx.changes.touch(heir)
        else:
            tx.delete_where(m.IpLease, m.IpLease.interface_id == translation.interface_id,
                            m.IpLease.ipv4_address == static.ingress_ipv4_address,
                            m.IpLease.enable_routing.is_(True))
    return tx.changes.delete(static)


@handler("create", "translation_static_addresses")
def create_static_address(tx: Tx, _uuid: str | None, params: Params) -> Row:
    """Errors: see _static, _check_free and _lease."""
    uuid = tx.new_uuid("translation_static_addresses", params)
    static = _static(tx, params)
    _check_free(tx, static)
    row = Model(uuid=uuid, leased=_lease(tx, static), **static.columns)
    return tx.row(tx.changes.add(row))


@handler("delete", "translation_static_addresses")
def delete_static_address(tx: Tx, uuid: str | None, params: Params) -> Row:
    """By uuid (Tx.child: ApiError(404, "uuid") unless the translation's, ApiError(422,
    name) for a POST parameter given too), else by the POST's parameters: the addresses
    and ports exactly (no ports: a row without), the route link when given;
    ApiError(404, None) when none matches. Errors of the parameters: see _static."""
    if uuid is not None:
        translation = tx.ref(m.Translation, params, "translation_uuid")
        return delete_static(tx, tx.child(Model, uuid, translation, "translation_id", params,
                                          MATCH))
    static = _static(tx, params)
    columns = dict(static.columns)
    if not params.has("route_link_uuid"):
        del columns["route_link_id"]
    row = tx.first_with(Model, columns)
    if row is None:
        raise ApiError(404, f"{static.translation.uuid} has no static address "
                            f"{static.describe()}")
    return delete_static(tx, row)
