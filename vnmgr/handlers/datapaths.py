"""Datapaths: one hypervisor's bridge, known by its dpid and the node_id of its vna."""

from __future__ import annotations

import re

from sqlalchemy import select

from vnet import models as m
from vnet.errors import conflict, invalid
from vnet.parse import format_dpid
from vnet.serialize import Row
from vnmgr.handlers.bindings import release_datapath
from vnmgr.handlers.tx import Tx, apply_text, handler
from vnmgr.params import Params


def _dpid(tx: Tx, params: Params, current: m.Datapath | None = None) -> str:
    """dpid in its stored form ("0x" + 16 hex digits, vnet.parse.format_dpid); raises
    ApiError(422, "dpid") when absent or not a 64-bit dpid in a form vnet.parse.dpid
    takes, ApiError(409, "dpid") when another datapath has it."""
    dpid = format_dpid(params.dpid("dpid", required=True))
    other = tx.session.scalar(select(m.Datapath).where(m.Datapath.dpid == dpid))
    if other is not None and other is not current:
        raise conflict("dpid", f"dpid {dpid} is already used by {other.uuid}")
    return dpid


# A node_id names the agent's message topic (vnet.messaging.node_topic, NUL-terminated)
# and appears in logs and tables: printable, without spaces.
_NODE_ID = re.compile(r"[^\s\x00-\x1f\x7f]+")


def _node_id(params: Params, required: bool) -> str | None:
    """node_id as given; raises ApiError(422, "node_id") when it holds whitespace or a
    control character (NUL would let one agent's topic prefix another's)."""
    value = params.text("node_id", required=required)
    if value is not None and not _NODE_ID.fullmatch(value):
        raise invalid("node_id", "node_id must be printable text without spaces or control "
                      "characters")
    return value


@handler("create", "datapaths")
def create_datapath(tx: Tx, _uuid: str | None, params: Params) -> Row:
    dp = m.Datapath(uuid=tx.new_uuid("datapaths", params),
                    display_name=params.text("display_name"), dpid=_dpid(tx, params),
                    node_id=_node_id(params, required=True))
    return tx.row(tx.changes.add(dp))


@handler("update", "datapaths")
def update_datapath(tx: Tx, uuid: str | None, params: Params) -> Row:
    dp = tx.get(m.Datapath, uuid)
    apply_text(dp, params, "display_name")
    if params.has("node_id"):
        dp.node_id = _node_id(params, required=True)
    if params.has("dpid"):
        dp.dpid = _dpid(tx, params, dp)
    return tx.row(tx.changes.touch(dp))


@handler("delete", "datapaths")
def delete_datapath(tx: Tx, uuid: str | None, _params: Params) -> Row:
    """Takes its network and route-link joins along; raises ApiError(409, None) while
    interfaces are owned by it."""
    dp = tx.get(m.Datapath, uuid)
    owned = (m.Interface, m.Interface.owner_datapath_id == dp.id)
    tx.refuse_if_used(dp.uuid, {"interfaces": owned})
    for model in (m.DatapathNetwork, m.DatapathRouteLink):
        tx.delete_where(model, model.datapath_id == dp.id)
    release_datapath(tx, dp)
    return tx.changes.delete(dp)
