"""Address allocation for interfaces created without a MAC or an IP."""

from __future__ import annotations

import secrets

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from vnet import models as m
from vnet.errors import conflict

# Locally administered, unicast: never collides with a real NIC's vendor MAC.
MAC_PREFIX = 0x525400000000


# Every column holding a MAC that the data plane answers for (each one unique).
_MAC_COLUMNS = (m.MacLease.mac_address, m.RouteLink.mac_address,
                m.DatapathNetwork.broadcast_mac_address, m.DatapathRouteLink.mac_address)


def mac_in_use(session: Session, mac: int) -> bool:
    """Whether any lease, route link or join uses this MAC (an int); one statement, as
    each is a round trip to the database on every interface create."""
    return bool(session.scalar(select(or_(*(exists().where(column == mac)
                                            for column in _MAC_COLUMNS)))))


def allocate_mac(session: Session) -> int:
    for _ in range(64):
        mac = MAC_PREFIX | secrets.randbits(24)
        if not mac_in_use(session, mac):
            return mac
    raise conflict("mac_address", "could not allocate a free MAC address")


def host_range(network: int, prefix: int) -> tuple[int, int]:
    """(first, last) address an interface may have on network/prefix, for manual and
    automatic addresses alike: all but the network and broadcast addresses (RFC 1122
    3.2.1.3), except that on a /31 both addresses are hosts (RFC 3021 §2.1) and a /32's
    one address is its host (no network or broadcast address to keep free; Neutron's
    ipam treats a single-address subnet the same way)."""
    size = 1 << (32 - prefix)
    if prefix >= 31:
        return network, network + size - 1
    return network + 1, network + size - 2


def allocate_ipv4(session: Session, network: m.Network) -> int:
    """Lowest free host address (host_range): from .2 up on a /29 or larger, .1 being
    left for the gateway as Neutron does; a /30, /31 or /32 has no address to spare."""
    first, last = host_range(network.ipv4_network, network.ipv4_prefix)
    if network.ipv4_prefix <= 29:
        first += 1
    taken = session.scalars(
        select(m.IpLease.ipv4_address)
        .where(m.IpLease.network_id == network.id)
        .order_by(m.IpLease.ipv4_address)
    ).all()
    candidate = first
    for address in taken:
        if address == candidate:
            candidate += 1
        elif address > candidate:
            break
    if candidate > last:
        raise conflict("ipv4_address", f"network {network.uuid} has no free address left")
    return candidate
