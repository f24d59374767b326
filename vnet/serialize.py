"""Rows to the flat JSON form of docs/model-slice.md (snapshots, events, API bodies)."""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vnet import models as m
from vnet.addr import format_ipv4, format_mac
from vnet.registry import RESOURCES

Row = dict[str, Any]

_HIDDEN = {"created_at", "updated_at"}  # appended last, as ISO 8601 UTC with a Z

# One entry per column: (column, how, output key, referenced model if how == "ref"),
# how being "ref" (shown as the referenced row's uuid), "mac", "ipv4" or "plain".
_Plan = tuple[tuple[str, str, str, type[m.Resource] | None], ...]


@cache
def _plan(table: str) -> _Plan:
    """Per table (= resource name), from the registry's field kinds: reference columns
    shown as the referenced row's uuid, MACs and IPv4 addresses in their text form."""
    resource = RESOURCES[table]
    kinds = {f.column: f.kind for f in resource.fields if f.stored}
    references = resource.references()
    plan = []
    for column in m.MODELS[table].__table__.columns:
        name = column.key
        if name in _HIDDEN:
            continue
        if name in references:
            field = references[name]
            plan.append((name, "ref", field.name, m.MODELS[field.ref or ""]))
        elif kinds.get(name) in ("mac", "ipv4"):
            plan.append((name, kinds[name], name, None))
        else:
            plan.append((name, "plain", name, None))
    return tuple(plan)


def serialize(session: Session, obj: m.Resource) -> Row:
    """The row's columns (references as uuids) then created_at/updated_at."""
    row: Row = {}
    for name, how, key, model in _plan(obj.__tablename__):
        value = getattr(obj, name)
        if how == "ref":
            ref = session.get(model, value) if value is not None else None
            row[key] = ref.uuid if ref is not None else None
        elif value is None:
            row[key] = None
        elif how == "mac":
            row[key] = format_mac(value)
        elif how == "ipv4":
            row[key] = format_ipv4(value)
        else:
            row[key] = value
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


@cache
def references(resource: str) -> tuple[tuple[str, str], ...]:
    """(row key, referenced resource) of each reference of a resource's rows, e.g.
    ip_leases -> (("interface_uuid", "interfaces"), ("network_uuid", "networks"), ...)."""
    names = {model: name for name, model in m.MODELS.items()}
    return tuple((key, names[model]) for _col, how, key, model in _plan(resource)
                 if how == "ref" and model is not None)
