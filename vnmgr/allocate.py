"""Address allocation for interfaces created without a MAC or an IP."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from vnet import models as m
from vnet.errors import conflict

# Locally administered, unicast: never collides with a real NIC's vendor MAC.
MAC_PREFIX = 0x525400000000


def mac_in_use(session: Session, mac: int) -> bool:
    for model, column in ((m.MacLease, m.MacLease.mac_address),
                          (m.RouteLink, m.RouteLink.mac_address),
                          (m.DatapathNetwork, m.DatapathNetwork.broadcast_mac_address),
                          (m.DatapathRouteLink, m.DatapathRouteLink.mac_address)):
        if session.scalar(select(model.id).where(column == mac)) is not None:
            return True
    return False


def allocate_mac(session: Session) -> int:
    for _ in range(64):
        mac = MAC_PREFIX | secrets.randbits(24)
        if not mac_in_use(session, mac):
            return mac
    raise conflict("mac_address", "could not allocate a free MAC address")


def allocate_ipv4(session: Session, network: m.Network) -> int:
    """Lowest free host address from .2 up: .1 is left for the gateway, as Neutron does,
    and network and broadcast addresses are never handed out."""
    first = network.ipv4_network + (2 if network.ipv4_prefix <= 29 else 1)
    last = network.ipv4_network + (1 << (32 - network.ipv4_prefix)) - 2
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
