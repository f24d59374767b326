"""Reads straight from the database: show, filtered and paginated lists.

Reads may bypass vnmgr (it is the single *writer*); they use the same serialisation as
vnmgr's events, so a row looks the same wherever it comes from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from vnet import models as m
from vnet import parse
from vnet.addr import AddressError, parse_ipv4, parse_mac
from vnet.errors import ApiError, invalid, not_found
from vnet.interface_rows import with_leases
from vnet.registry import PAGE_DEFAULT, PAGE_MAX, Field, Resource
from vnet.serialize import Row, serialize

_TABLE_MODELS = {model.__tablename__: model for model in m.MODELS.values()}
_PAGING = ("limit", "offset")


def find(session: Session, resource: str, uuid: str, field: str = "uuid") -> m.Resource:
    model = m.MODELS[resource]
    obj = session.scalar(select(model).where(model.uuid == uuid))
    if obj is None:
        raise not_found(field, uuid)
    return obj


def show(session: Session, resource: Resource, obj: m.Resource) -> Row:
    return rows(session, resource, [obj])[0]


def rows(session: Session, resource: Resource, objs: Sequence[m.Resource]) -> list[Row]:
    # Held until the rows are built: the session's identity map keeps rows only weakly.
    referenced = _prefetch(session, objs)  # noqa: F841
    result = [serialize(session, obj) for obj in objs]
    if resource.name == "interfaces":
        return with_leases(session, objs, result)
    return result


def page(session: Session, resource: Resource, args: Mapping[str, str],
         conditions: Sequence[ColumnElement[bool]] = ()) -> dict[str, Any]:
    """`{"total_count", "offset", "limit", "items"}` of rows matching the query's filters."""
    limit = _int_arg(args, "limit", PAGE_DEFAULT, PAGE_MAX)
    offset = _int_arg(args, "offset", 0, 2**31)
    model = resource.model
    where = [*conditions, *filters(resource, args)]
    total = session.scalar(select(func.count()).select_from(model).where(*where))
    objs = session.scalars(select(model).where(*where).order_by(model.id)
                           .limit(limit).offset(offset)).all()
    return {"total_count": total, "offset": offset, "limit": limit,
            "items": rows(session, resource, objs)}


def filters(resource: Resource, args: Mapping[str, str]) -> list[ColumnElement[bool]]:
    allowed = resource.filterable()
    conditions = []
    for name, text in args.items():
        if name in _PAGING:
            continue
        field = allowed.get(name)
        if field is None:
            # Silently ignoring a misspelt filter would return every row instead of few.
            raise ApiError(400, f"{name} is not a filter of {resource.name}; filters: "
                                f"{', '.join(sorted(allowed))}", name)
        conditions.append(getattr(resource.model, field.column) == _filter_value(field, text))
    return conditions


def _filter_value(field: Field, text: str) -> Any:
    try:
        if field.kind == "ref":
            model = m.MODELS[field.ref or ""]
            return select(model.id).where(model.uuid == text).scalar_subquery()
        if field.kind == "integer":
            value = parse.integer(text)
            if not -2**63 <= value < 2**63:  # else the driver fails: a 500, not 422
                raise ValueError(text)
            return value
        if field.kind == "boolean":
            return parse.boolean(text)
        if field.kind == "mac":
            return parse_mac(text)
        if field.kind == "ipv4":
            return parse_ipv4(text)
        if field.kind == "dpid":
            return parse.format_dpid(parse.dpid(text))
    except (ValueError, AddressError):
        raise invalid(field.name, f"{text!r} is not a valid {field.kind} for {field.name}")\
            from None
    if field.enum is not None and text not in field.enum:
        # As a write would refuse it: a filter no row can match is a typo, not a query.
        raise invalid(field.name, f"{field.name} must be one of {', '.join(field.enum)}")
    return text


def _int_arg(args: Mapping[str, str], name: str, default: int, high: int) -> int:
    text = args.get(name)
    if text is None or text == "":
        return default
    try:
        value = parse.integer(text)
    except ValueError:
        raise invalid(name, f"{name} must be an integer") from None
    if not 0 <= value <= high:
        raise invalid(name, f"{name} must be between 0 and {high}")
    return value


def _prefetch(session: Session, objs: Sequence[m.Resource]) -> list[m.Resource]:
    """Load every referenced row with one query per table, so serialize()'s uuid look-ups
    hit the session's identity map instead of costing a query per row and reference.

    The caller keeps the returned rows while it serialises: SQLAlchemy's identity map
    holds them weakly, so rows nobody refers to are gone again at once (a 1,000-row page
    then cost 1,000 extra queries)."""
    loaded: list[m.Resource] = []
    if not objs:
        return loaded
    for column in objs[0].__table__.columns:
        for fk in column.foreign_keys:
            target = _TABLE_MODELS[fk.column.table.name]
            ids = {getattr(obj, column.key) for obj in objs} - {None}
            if ids:
                loaded.extend(session.scalars(select(target).where(target.id.in_(ids))).all())
    return loaded
