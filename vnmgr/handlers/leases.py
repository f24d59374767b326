"""MAC and IP leases: an interface's addresses, each a row of its own."""

from __future__ import annotations

from sqlalchemy import select

from vnet import models as m
from vnet.addr import format_ipv4, network_bounds
from vnet.errors import conflict, invalid
from vnet.serialize import Row
from vnmgr.allocate import allocate_ipv4, host_range
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
                 mac_lease: m.MacLease | None, uuid: str | None = None) -> m.IpLease:
    """Lease `ipv4_address` (or the lowest free one) on network to interface.

    raises ApiError(422, "ipv4_address") when it is outside the network or is its
    network or broadcast address (none on a /31 or /32: vnmgr.allocate.host_range),
    ApiError(409, "ipv4_address") when already leased
    there or when the network is full.
    """
    address = params.ipv4("ipv4_address")
    if address is None:
        address = allocate_ipv4(tx.session, network)
    else:
        first, last = network_bounds(network.ipv4_network, network.ipv4_prefix)
        if not first <= address <= last:
            raise invalid("ipv4_address", f"{format_ipv4(address)} is outside {network.uuid} "
                                          f"({format_ipv4(first)}/{network.ipv4_prefix})")
        low, high = host_range(first, network.ipv4_prefix)
        if not low <= address <= high:
            raise invalid("ipv4_address", f"{format_ipv4(address)} is the network or broadcast "
                                          f"address of {network.uuid}")
        if tx.exists(m.IpLease, m.IpLease.network_id == network.id,
                     m.IpLease.ipv4_address == address):
            raise conflict("ipv4_address",
                           f"{format_ipv4(address)} is already leased on {network.uuid}")
    lease = m.IpLease(uuid=uuid or tx.new_uuid("ip_leases"),
                      interface_id=interface.id,
                      network_id=network.id, ipv4_address=address,
                      mac_lease_id=mac_lease.id if mac_lease else None)
    return tx.changes.add(lease)


def _first_mac_lease(tx: Tx, interface: m.Interface) -> m.MacLease | None:
    return tx.session.scalar(select(m.MacLease).where(m.MacLease.interface_id == interface.id)
                             .order_by(m.MacLease.id))


@handler("create", "mac_leases")
def create_mac_lease(tx: Tx, _uuid: str | None, params: Params) -> Row:
    interface = tx.ref(m.Interface, params, "interface_uuid")
    return tx.row(new_mac_lease(tx, interface, params, tx.new_uuid("mac_leases", params)))


@handler("delete", "mac_leases")
def delete_mac_lease(tx: Tx, uuid: str | None, _params: Params) -> Row:
    """Takes the ip leases bound to this MAC along."""
    lease = tx.get(m.MacLease, uuid)
    refuse_if_serving(tx, tx.session.get(m.Interface, lease.interface_id), "uuid",
                      "deleting its MAC lease")
    tx.delete_where(m.IpLease, m.IpLease.mac_lease_id == lease.id)
    return tx.changes.delete(lease)


@handler("create", "ip_leases")
def create_ip_lease(tx: Tx, _uuid: str | None, params: Params) -> Row:
    """Bound to `mac_lease_uuid`, else to the interface's first mac lease; raises
    ApiError(422, "mac_lease_uuid") when that lease is another interface's."""
    interface = tx.ref(m.Interface, params, "interface_uuid")
    network = tx.ref(m.Network, params, "network_uuid")
    refuse_if_serving(tx, interface, "interface_uuid", "another address")
    mac_lease = tx.ref(m.MacLease, params, "mac_lease_uuid", required=False)
    if mac_lease is not None and mac_lease.interface_id != interface.id:
        raise invalid("mac_lease_uuid", f"{mac_lease.uuid} belongs to another interface")
    mac_lease = mac_lease or _first_mac_lease(tx, interface)
    lease = new_ip_lease(tx, interface, network, params, mac_lease,
                         tx.new_uuid("ip_leases", params))
    return tx.row(lease)


@handler("delete", "ip_leases")
def delete_ip_lease(tx: Tx, uuid: str | None, _params: Params) -> Row:
    """Raises ApiError(409, "uuid") for the address of a network service."""
    lease = tx.get(m.IpLease, uuid)
    refuse_if_serving(tx, tx.session.get(m.Interface, lease.interface_id), "uuid",
                      "deleting its address")
    return tx.changes.delete(lease)
