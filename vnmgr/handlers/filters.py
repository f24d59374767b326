"""OpenVNet's static filters (vnet/lib/vnet/endpoints/1.0/filters.rb): a filter of one vif,
and its static entries, created and deleted under it (no update, as in OpenVNet)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from vnet import models as m
from vnet.addr import format_ipv4
from vnet.errors import ApiError, conflict, invalid
from vnet.registry import (
    FILTER_MODES,
    FILTER_PORT,
    FILTER_PREFIX,
    FILTER_PROTOCOLS,
    NESTED,
)
from vnet.serialize import Row
from vnmgr.handlers.tx import Tx, apply_booleans, handler
from vnmgr.handlers.vifs import vif
from vnmgr.params import Params, as_integer, as_ipv4

PORTED = ("tcp", "udp")  # the protocols with a port_number
PASSTHROUGHS = ("ingress_passthrough", "egress_passthrough")
# The parameters that name an entry on DELETE /filters/<uuid>/static (the registry's).
MATCH = next(n.delete_by for n in NESTED if n.resource == "filter_statics")


@handler("create", "filters")
def create_filter(tx: Tx, _uuid: str | None, params: Params) -> Row:
    """raises ApiError(422, "interface_uuid") unless it names a vif, ApiError(422,
    "mode") unless mode is static."""
    interface = vif(tx, params)
    params.text("mode", required=True)
    mode = params.choice("mode", FILTER_MODES)
    row = m.Filter(uuid=tx.new_uuid("filters", params), interface_id=interface.id, mode=mode,
                   ingress_passthrough=bool(params.boolean("ingress_passthrough", False)),
                   egress_passthrough=bool(params.boolean("egress_passthrough", False)))
    return tx.row(tx.changes.add(row))


@handler("update", "filters")
def update_filter(tx: Tx, uuid: str | None, params: Params) -> Row:
    row = tx.get(m.Filter, uuid)
    apply_booleans(row, params, *PASSTHROUGHS)
    return tx.row(tx.changes.touch(row))


def delete_filters(tx: Tx, *conditions: Any) -> None:
    """Delete the matching filters with their static entries."""
    for row in tx.session.scalars(select(m.Filter).where(*conditions)).all():
        _delete_filter(tx, row)


def _delete_filter(tx: Tx, row: m.Filter) -> Row:
    tx.delete_where(m.FilterStatic, m.FilterStatic.filter_id == row.id)
    return tx.changes.delete(row)


@handler("delete", "filters")
def delete_filter(tx: Tx, uuid: str | None, _params: Params) -> Row:
    """Takes its static entries along."""
    return _delete_filter(tx, tx.get(m.Filter, uuid))


def _peer(params: Params) -> tuple[int, int]:
    """(network address, prefix) of `ipv4_address` — "a.b.c.d" (a /32) or "a.b.c.d/n",
    host bits cleared — default 0.0.0.0/0; raises ApiError(422, "ipv4_address")."""
    text = params.text("ipv4_address")
    if text is None:
        return 0, 0
    address_text, slash, suffix = text.partition("/")
    address = as_ipv4("ipv4_address", address_text)
    prefix = as_integer("ipv4_address", suffix, *FILTER_PREFIX) if slash else 32
    mask = (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF
    return address & mask, prefix


def _port(params: Params, protocol: str) -> int | None:
    """tcp/udp: port_number, default 0 (any); raises ApiError(422, "port_number") when
    given for another protocol, or outside 0-65535."""
    if protocol not in PORTED:
        if params.has("port_number"):
            raise invalid("port_number", f"port_number is for tcp and udp only, not "
                                         f"{protocol}")
        return None
    port = params.integer("port_number", low=FILTER_PORT[0], high=FILTER_PORT[1])
    return 0 if port is None else port


def _match(tx: Tx, params: Params) -> tuple[m.Filter, dict[str, Any]]:
    """The filter from the path and the columns that identify a static entry of it
    (OpenVNet's params_to_db_fields); raises ApiError(422, field) for a bad protocol,
    address or port, ApiError(422, "filter_uuid") when the filter is not static."""
    row = tx.ref(m.Filter, params, "filter_uuid")
    if row.mode != "static":
        raise invalid("filter_uuid", f"{row.uuid} is mode {row.mode}: static entries need "
                                     "mode static")
    params.text("protocol", required=True)
    protocol = params.choice("protocol", FILTER_PROTOCOLS)
    address, prefix = _peer(params)
    return row, {"filter_id": row.id, "protocol": protocol, "ipv4_address": address,
                 "ipv4_prefix": prefix, "port_number": _port(params, protocol)}


def _passthrough(params: Params) -> bool:
    """raises ApiError(422, "passthrough") when absent or not a boolean."""
    passthrough = params.boolean("passthrough")
    if passthrough is None:
        raise invalid("passthrough", "passthrough is required")
    return passthrough


def _describe(match: dict[str, Any]) -> str:
    port = match["port_number"]
    return (f"{match['protocol']} {format_ipv4(match['ipv4_address'])}/{match['ipv4_prefix']}"
            + (f" port {port}" if port else ""))


@handler("create", "filter_statics")
def create_filter_static(tx: Tx, _uuid: str | None, params: Params) -> Row:
    """raises ApiError(422, "passthrough") when absent, ApiError(409, "protocol") when
    the filter already has an entry with this protocol, address, prefix and port."""
    row, match = _match(tx, params)
    passthrough = _passthrough(params)
    if tx.first_with(m.FilterStatic, match) is not None:
        raise conflict("protocol", f"{row.uuid} already has a static entry for "
                                   f"{_describe(match)}")
    static = m.FilterStatic(uuid=tx.new_uuid("filter_statics", params), passthrough=passthrough,
                            **match)
    return tx.row(tx.changes.add(static))


@handler("delete", "filter_statics")
def delete_filter_static(tx: Tx, uuid: str | None, params: Params) -> Row:
    """By uuid (ApiError(404, "uuid") unless it is the filter's; no match parameters
    then: ApiError(422, that parameter)), else by the POST's parameters, passthrough
    included (required, as in OpenVNet): ApiError(404, None) when no entry matches."""
    if uuid is not None:
        row = tx.ref(m.Filter, params, "filter_uuid")
        return tx.changes.delete(tx.child(m.FilterStatic, uuid, row, "filter_id", params,
                                          MATCH))
    row, match = _match(tx, params)
    passthrough = _passthrough(params)
    static = tx.first_with(m.FilterStatic, match)
    if static is None or static.passthrough != passthrough:
        raise ApiError(404, f"{row.uuid} has no static entry for {_describe(match)} "
                            f"passthrough {str(passthrough).lower()}")
    return tx.changes.delete(static)
