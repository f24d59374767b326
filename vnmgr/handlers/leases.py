"""MAC and IP leases: an interface's addresses, each a row of its own."""

from __future__ import annotations

from sqlalchemy import select

from vnet import models as m
from vnet.addr import format_ipv4
from vnet.errors import conflict, invalid
from vnet.serialize import Row
from vnmgr.allocate import allocate_ipv4
from vnmgr.handlers.networks import check_host_address
from vnmgr.handlers.services import refuse_if_serving
from vnmgr.handlers.tx import Tx, handler
from vnmgr.params import Params


def new_mac_lease(tx: Tx, interface: m.Interface, params: Params,
                  uuid: str | None = None) -> m.MacLease:
    """Lease `mac_address` (or a free one) to interface; see Tx.unique_mac for errors."""
    lease = m.MacLease(uuid=uuid or tx.new_uuid("mac_leases"), interface_id=interface.id,
                       mac_address=tx.unique_mac(params))
    return tx.changes.add(lease)


def new_ip_lease(tx: Tx, interface: m.Interface, network: m.Network, params: Params,
                 mac_lease: m.MacLease | None, uuid: str | None = None,
                 routed: bool = False) -> m.IpLease:
    """Lease `ipv4_address` (or the lowest free one) on network to interface.

    raises ApiError(422, "ipv4_address") when it is outside the network or is its
    network or broadcast address (networks.check_host_address),
    ApiError(409, "ipv4_address") when already leased there or when the network is full.
    """
    address = params.ipv4("ipv4_address")
    if address is None:
        address = allocate_ipv4(tx.session, network)
    else:
        check_host_address("ipv4_address", address, network)
        if tx.exists(m.IpLease, m.IpLease.network_id == network.id,
                     m.IpLease.ipv4_address == address):
            raise conflict("ipv4_address",
                           f"{format_ipv4(address)} is already leased on {network.uuid}")
    return add_ip_lease(tx, interface, network, address, mac_lease, uuid, routed)


def add_ip_lease(tx: Tx, interface: m.Interface, network: m.Network, address: int,
                 mac_lease: m.MacLease | None, uuid: str | None = None,
                 routed: bool = False) -> m.IpLease:
    """The lease row, unchecked: the caller has checked the address."""
    lease = m.IpLease(uuid=uuid or tx.new_uuid("ip_leases"), interface_id=interface.id,
                      network_id=network.id, ipv4_address=address,
                      mac_lease_id=mac_lease.id if mac_lease else None, enable_routing=routed)
    return tx.changes.add(lease)


def first_mac_lease(tx: Tx, interface: m.Interface) -> m.MacLease | None:
    return tx.session.scalar(select(m.MacLease).where(m.MacLease.interface_id == interface.id)
                             .order_by(m.MacLease.id))


def _leased_for(tx: Tx, lease: m.IpLease, leased_only: bool = True
                ) -> list[m.TranslationStaticAddress]:
    """The static addresses that leased this address to its interface (leased=true), or
    with leased_only=False every static address of the interface translating it."""
    model = m.TranslationStaticAddress
    where = [model.ingress_ipv4_address == lease.ipv4_address,
             m.Translation.interface_id == lease.interface_id]
    if leased_only:
        where.append(model.leased.is_(True))
    return list(tx.session.scalars(
        select(model).join(m.Translation, m.Translation.id == model.translation_id)
        .where(*where)))


def _refuse_if_translated(tx: Tx, leases: list[m.IpLease]) -> None:
    """raises ApiError(409, "uuid") when a static address leased one of these addresses
    (deleting the static address releases it), or translates it (a global address must
    stay the port's, or another interface could lease it), or when it is a snat port's
    last own address on its network (the address SNAT uses)."""
    for lease in leases:
        owners = _leased_for(tx, lease)
        if owners:
            raise conflict("uuid", f"{format_ipv4(lease.ipv4_address)} was leased for static "
                                   f"address {owners[0].uuid}: delete that instead")
        users = _leased_for(tx, lease, leased_only=False)
        if users:
            raise conflict("uuid", f"{format_ipv4(lease.ipv4_address)} is the global address "
                                   f"of static address {users[0].uuid}: delete that first")
        if not lease.enable_routing and tx.exists(
                m.Translation, m.Translation.interface_id == lease.interface_id,
                m.Translation.mode == "snat") and not tx.exists(
                m.IpLease, m.IpLease.interface_id == lease.interface_id,
                m.IpLease.network_id == lease.network_id, m.IpLease.id != lease.id,
                m.IpLease.enable_routing.is_(False)):
            raise conflict("uuid", f"{format_ipv4(lease.ipv4_address)} is the address a snat "
                                   "translation of its interface uses: delete that first")


def _take_over(tx: Tx, interface: m.Interface, network: m.Network, params: Params) -> None:
    """An explicit lease of an address vnmgr leased for the interface's static addresses
    replaces that lease (OpenVNet's wanedge dataset posts its ip_leases after its
    translation_static_addresses); the static addresses then no longer own it."""
    address = params.ipv4("ipv4_address")
    if address is None:
        return
    lease = tx.session.scalar(select(m.IpLease).where(
        m.IpLease.network_id == network.id, m.IpLease.ipv4_address == address,
        m.IpLease.interface_id == interface.id))
    if lease is None:
        return
    owners = _leased_for(tx, lease)
    for static in owners:
        static.leased = False
        tx.changes.touch(static)
    if owners:
        tx.changes.delete(lease)


@handler("create", "mac_leases")
def create_mac_lease(tx: Tx, _uuid: str | None, params: Params) -> Row:
    interface = tx.ref(m.Interface, params, "interface_uuid")
    return tx.row(new_mac_lease(tx, interface, params, tx.new_uuid("mac_leases", params)))


@handler("delete", "mac_leases")
def delete_mac_lease(tx: Tx, uuid: str | None, _params: Params) -> Row:
    """Takes the ip leases bound to this MAC along; raises ApiError(409, "uuid") when
    one of them was leased for a static address (see _refuse_if_translated)."""
    lease = tx.get(m.MacLease, uuid)
    refuse_if_serving(tx, tx.session.get(m.Interface, lease.interface_id), "uuid",
                      "deleting its MAC lease")
    _refuse_if_translated(tx, list(tx.session.scalars(
        select(m.IpLease).where(m.IpLease.mac_lease_id == lease.id))))
    tx.delete_where(m.IpLease, m.IpLease.mac_lease_id == lease.id)
    return tx.changes.delete(lease)


@handler("create", "ip_leases")
def create_ip_lease(tx: Tx, _uuid: str | None, params: Params) -> Row:
    """Bound to `mac_lease_uuid`, else to the interface's first mac lease; the interface
    defaults to the MAC lease's (OpenVNet's datasets name only the MAC lease). Raises
    ApiError(422, "interface_uuid") when neither is given, ApiError(422,
    "mac_lease_uuid") when that lease is another interface's; see _take_over."""
    uuid = tx.new_uuid("ip_leases", params)
    interface = tx.ref(m.Interface, params, "interface_uuid", required=False)
    network = tx.ref(m.Network, params, "network_uuid")
    mac_lease = tx.ref(m.MacLease, params, "mac_lease_uuid", required=False)
    if interface is None and mac_lease is None:
        raise invalid("interface_uuid", "interface_uuid is required (or mac_lease_uuid)")
    interface = interface or tx.session.get(m.Interface, mac_lease.interface_id)
    refuse_if_serving(tx, interface, "interface_uuid", "another address")
    if mac_lease is not None and mac_lease.interface_id != interface.id:
        raise invalid("mac_lease_uuid", f"{mac_lease.uuid} belongs to another interface")
    routed = bool(params.boolean("enable_routing", False))
    _take_over(tx, interface, network, params)
    lease = new_ip_lease(tx, interface, network, params,
                         mac_lease or first_mac_lease(tx, interface), uuid, routed)
    return tx.row(lease)


@handler("delete", "ip_leases")
def delete_ip_lease(tx: Tx, uuid: str | None, _params: Params) -> Row:
    """Raises ApiError(409, "uuid") for the address of a network service, or one leased
    for a static address (see _refuse_if_translated)."""
    lease = tx.get(m.IpLease, uuid)
    refuse_if_serving(tx, tx.session.get(m.Interface, lease.interface_id), "uuid",
                      "deleting its address")
    _refuse_if_translated(tx, [lease])
    return tx.changes.delete(lease)
