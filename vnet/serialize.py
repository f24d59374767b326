"""Rows to the flat JSON form of docs/model-slice.md (snapshots, events, API bodies)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vnet import models as m
from vnet.addr import format_ipv4, format_mac

Row = dict[str, Any]

# Foreign-key columns shown as the referenced row's uuid: column -> (output key, model).
_REFS: dict[str, tuple[str, type[m.Resource]]] = {
    "owner_datapath_id": ("owner_datapath_uuid", m.Datapath),
    "interface_id": ("interface_uuid", m.Interface),
    "network_id": ("network_uuid", m.Network),
    "mac_lease_id": ("mac_lease_uuid", m.MacLease),
    "route_link_id": ("route_link_uuid", m.RouteLink),
    "datapath_id": ("datapath_uuid", m.Datapath),
    "security_group_id": ("security_group_uuid", m.SecurityGroup),
}
_MACS = {"mac_address", "broadcast_mac_address"}
_IPS = {"ipv4_address", "ipv4_network"}
_HIDDEN = {"created_at", "updated_at"}


def serialize(session: Session, obj: m.Resource) -> Row:
    row: Row = {}
    for column in obj.__table__.columns:
        name = column.key
        value = getattr(obj, name)
        if name in _HIDDEN:
            continue
        if name in _REFS:
            key, model = _REFS[name]
            ref = session.get(model, value) if value is not None else None
            row[key] = ref.uuid if ref is not None else None
        elif name in _MACS:
            row[name] = format_mac(value)
        elif name in _IPS:
            row[name] = format_ipv4(value)
        else:
            row[name] = value
    row["created_at"] = obj.created_at.isoformat() + "Z" if obj.created_at else None
    row["updated_at"] = obj.updated_at.isoformat() + "Z" if obj.updated_at else None
    return row


def snapshot_model(session: Session) -> dict[str, dict[str, Row]]:
    """The whole model, every resource keyed by uuid.

    Loading each table once fills the session's identity map, so the uuid look-ups in
    serialize() are dictionary hits instead of one query per reference.
    """
    loaded = {name: session.scalars(select(model)).all() for name, model in m.MODELS.items()}
    return {
        name: {obj.uuid: serialize(session, obj) for obj in rows} for name, rows in loaded.items()
    }
