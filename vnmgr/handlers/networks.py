"""Networks, and the "a.b.c.d/nn" address parsing that routes share with them."""

from __future__ import annotations

from sqlalchemy import func, select

from vnet import models as m
from vnet.addr import format_ipv4, network_bounds
from vnet.errors import conflict, invalid
from vnet.registry import MTU, NETWORK_MODES, NETWORK_PREFIX, SEGMENT_ID
from vnet.serialize import Row
from vnmgr.allocate import host_range
from vnmgr.handlers.tx import Tx, apply_text, handler
from vnmgr.params import Params, as_integer, as_ipv4

DEFAULT_PREFIX = 24


def network_address(params: Params,
                    bounds: tuple[int, int] = NETWORK_PREFIX) -> tuple[int, int]:
    """(address, prefix) from `ipv4_network` — "a.b.c.d" or "a.b.c.d/nn" — and
    `ipv4_prefix`, which wins over a /nn suffix; the prefix defaults to 24.

    raises ApiError(422, "ipv4_network") when it is absent or not an address,
    ApiError(422, "ipv4_prefix") when the prefix is outside bounds, and see first_address.
    """
    text, slash, suffix = params.text("ipv4_network", required=True).partition("/")
    address = as_ipv4("ipv4_network", text)
    if params.has("ipv4_prefix"):
        prefix = params.integer("ipv4_prefix", low=bounds[0], high=bounds[1])
    elif slash:
        prefix = as_integer("ipv4_prefix", suffix, low=bounds[0], high=bounds[1])
    else:
        prefix = DEFAULT_PREFIX
    return first_address(address, prefix)


def first_address(address: int, prefix: int) -> tuple[int, int]:
    """(address, prefix) unchanged; raises ApiError(422, "ipv4_network") when address
    has host bits set under prefix."""
    if address & ((1 << (32 - prefix)) - 1):
        raise invalid("ipv4_network", f"{format_ipv4(address)} is not the first address of a "
                                      f"/{prefix} network")
    return address, prefix


def contains(network: m.Network, address: int) -> bool:
    first, last = network_bounds(network.ipv4_network, network.ipv4_prefix)
    return first <= address <= last


def check_host_address(field: str, address: int, network: m.Network) -> None:
    """raises ApiError(422, field) when address is outside the network or is its network
    or broadcast address (none on a /31 or /32: vnmgr.allocate.host_range)."""
    if not contains(network, address):
        raise invalid(field, f"{format_ipv4(address)} is outside {network.uuid} "
                             f"({format_ipv4(network.ipv4_network)}/{network.ipv4_prefix})")
    low, high = host_range(network.ipv4_network, network.ipv4_prefix)
    if not low <= address <= high:
        raise invalid(field, f"{format_ipv4(address)} is the network or broadcast address "
                             f"of {network.uuid}")


@handler("create", "networks")
def create_network(tx: Tx, _uuid: str | None, params: Params) -> Row:
    """raises ApiError(409, "segment_id") when another network has the segment_id."""
    address, prefix = network_address(params)
    segment_id = params.integer("segment_id", low=SEGMENT_ID[0], high=SEGMENT_ID[1])
    if segment_id is not None and tx.exists(m.Network, m.Network.segment_id == segment_id):
        raise conflict("segment_id", f"segment_id {segment_id} is already in use")
    network = m.Network(uuid=tx.new_uuid("networks", params),
                        display_name=params.text("display_name"),
                        ipv4_network=address, ipv4_prefix=prefix,
                        domain_name=params.text("domain_name"),
                        network_mode=params.choice("network_mode", NETWORK_MODES, "virtual"),
                        segment_id=segment_id, mtu=_mtu(params))
    tx.changes.add(network)
    if network.segment_id is None:
        # The database id is unique and, in practice, small: a ready-made tunnel key,
        # unless a user gave it to another network.  Decided before assigning: a query
        # flushes the pending row, and a flushed duplicate would be a 409 on a field the
        # user never sent.
        if tx.exists(m.Network, m.Network.segment_id == network.id):
            highest = tx.session.scalar(select(func.max(m.Network.segment_id))) or 0
            network.segment_id = highest + 1
        else:
            network.segment_id = network.id
    return tx.row(tx.changes.touch(network))


@handler("update", "networks")
def update_network(tx: Tx, uuid: str | None, params: Params) -> Row:
    """Names and the MTU change (vnmgr.accept refuses an address, mode or segment: the
    registry marks them create-only, as OpenVNet's PUT /networks takes only names)."""
    network = tx.get(m.Network, uuid)
    apply_text(network, params, "display_name", "domain_name")
    if params.has("mtu"):
        network.mtu = _mtu(params)
    elif params.clears("mtu"):
        network.mtu = None
    return tx.row(tx.changes.touch(network))


def _mtu(params: Params) -> int | None:
    return params.integer("mtu", low=MTU[0], high=MTU[1])


@handler("delete", "networks")
def delete_network(tx: Tx, uuid: str | None, _params: Params) -> Row:
    """Takes its datapath joins along; raises ApiError(409, None) while ip leases or
    routes are on it."""
    network = tx.get(m.Network, uuid)
    tx.refuse_if_used(network.uuid, {
        "interfaces (ip leases)": (m.IpLease, m.IpLease.network_id == network.id),
        "routes": (m.Route, m.Route.network_id == network.id),
    })
    tx.delete_where(m.DatapathNetwork, m.DatapathNetwork.network_id == network.id)
    return tx.changes.delete(network)
