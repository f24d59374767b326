"""View factories: one function per kind of route, specialised by the resource registry."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flask import request
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from vnet import models as m
from vnet.errors import ApiError, invalid
from vnet.registry import RESOURCES, Join, Listing, Nested, Resource
from webapi import reads
from webapi.backend import backend
from webapi.body import request_params

View = Callable[..., Any]


# ---------------------------------------------------------------- plain resources

def list_view(resource: Resource) -> View:
    def view() -> Any:
        with backend().read() as session:
            return reads.page(session, resource, request.args)
    return view


def _no_query() -> None:
    """A GET of one row takes no query parameter: one given is an error, not ignored
    (a filter meant for the list, or a typo, must not pass for an answer)."""
    for name in request.args:
        raise ApiError(400, f"{name} is not a parameter of a GET of one row; filters "
                       "apply to lists", name)


def show_view(resource: Resource) -> View:
    def view(uuid: str) -> Any:
        _no_query()
        with backend().read() as session:
            return reads.show(session, resource, reads.find(session, resource.name, uuid))
    return view


def write_view(op: str, resource: Resource, status: int = 200) -> View:
    """create/update/delete go to vnmgr, the single writer; its reply is the row, shaped
    as GET shows it (interfaces with their leases), so nothing is read back here."""
    def view(uuid: str | None = None) -> Any:
        return backend().call(op, resource.name, uuid, request_params()), status
    return view


# ---------------------------------------------------------------- joins

def join_list_view(join: Join) -> View:
    def view(**path: str) -> Any:
        parent = path[join.parent_field]
        with backend().read() as session:
            owner = reads.find(session, join.parent, parent, join.parent_field)
            column = getattr(join.resource.model, _id_column(join.parent_field))
            return reads.page(session, join.resource, request.args, [column == owner.id])
    return view


def join_show_view(join: Join) -> View:
    def view(**path: str) -> Any:
        _no_query()
        parent, child = path[join.parent_field], path[join.child_field]
        with backend().read() as session:
            owner = reads.find(session, join.parent, parent, join.parent_field)
            member = reads.find(session, join.child, child, join.child_field)
            model = join.resource.model
            obj = session.scalar(select(model).where(
                getattr(model, _id_column(join.parent_field)) == owner.id,
                getattr(model, _id_column(join.child_field)) == member.id))
            if obj is None:
                raise ApiError(404, f"{child} is not added to {parent}", join.child_field)
            return reads.show(session, join.resource, obj)
    return view


def join_write_view(op: str, join: Join, status: int = 200) -> View:
    """The path names both ends; a parameter naming an end too must agree with it
    (raises ApiError(422, end) otherwise: which one was meant is anyone's guess)."""
    def view(**path: str) -> Any:
        return backend().call(op, join.resource.name, None, _with_path(path)), status
    return view


def _with_path(path: dict[str, str]) -> dict[str, Any]:
    """The request's parameters plus the references its path names; raises ApiError(422,
    field) when a parameter names one of them differently."""
    params = request_params()
    for field, value in path.items():
        if params.get(field, value) not in (value, None, ""):
            given = json.dumps(params[field])
            raise invalid(field, f"{field} {given} disagrees with the path's {value}")
    return {**params, **path}


# ---------------------------------------------------------------- nested rows

def nested_list_view(nested: Nested) -> View:
    resource, field = RESOURCES[nested.resource], nested.parent_field

    def view(**path: str) -> Any:
        with backend().read() as session:
            owner = reads.find(session, nested.parent, path[field], field)
            column = getattr(resource.model, _id_column(field))
            return reads.page(session, resource, request.args, [column == owner.id])
    return view


def _nested_row(session: Any, nested: Nested, parent: str, uuid: str) -> Any:
    """The child row `uuid` of parent `parent`; raises ApiError(404, field) otherwise."""
    field = nested.parent_field
    owner = reads.find(session, nested.parent, parent, field)
    obj = reads.find(session, nested.resource, uuid)
    if getattr(obj, _id_column(field)) != owner.id:
        raise ApiError(404, f"{uuid} is not a row of {parent}", "uuid")
    return obj


def nested_show_view(nested: Nested) -> View:
    def view(uuid: str, **path: str) -> Any:
        _no_query()
        with backend().read() as session:
            obj = _nested_row(session, nested, path[nested.parent_field], uuid)
            return reads.show(session, RESOURCES[nested.resource], obj)
    return view


def nested_write_view(op: str, nested: Nested, status: int = 200) -> View:
    """POST of the collection path, or (delete) the DELETE that names the row by its
    parameters (Nested.delete_by): vnmgr finds it."""
    def view(**path: str) -> Any:
        return backend().call(op, nested.resource, None, _with_path(path)), status
    return view


def nested_delete_view(nested: Nested) -> View:
    """vnmgr checks the parameters, then that the row is the parent's (404 otherwise)."""
    def view(uuid: str, **path: str) -> Any:
        return backend().call("delete", nested.resource, uuid, _with_path(path))
    return view


def _id_column(uuid_field: str) -> str:
    return uuid_field.removesuffix("_uuid") + "_id"


# ---------------------------------------------------------------- listings

def listing_view(listing: Listing) -> View:
    resource = RESOURCES[listing.resource]
    through = RESOURCES[listing.through].model
    field = listing.parent_field

    def view(**path: str) -> Any:
        with backend().read() as session:
            owner = reads.find(session, listing.parent, path[field], field)
            linked = select(getattr(through, listing.child_column)).where(
                getattr(through, listing.parent_column) == owner.id)
            return reads.page(session, resource, request.args, [resource.model.id.in_(linked)])
    return view


# ---------------------------------------------------------------- service

def health_view() -> Any:
    """{"status", "webapi", "vnmgr", "database", "seq", "disconnected_datapaths"}.

    status: "ok"; "degraded" when some datapath's is_connected is false (its vna stopped
    reporting or lost its switch; listed by uuid in disconnected_datapaths), still 200;
    "unavailable" with 503 when vnmgr or the database does not answer (then
    disconnected_datapaths is null if the database is the one down)."""
    state = backend()
    body: dict[str, Any] = {"status": "ok", "webapi": "ok", "vnmgr": "ok", "database": "ok",
                            "seq": None, "disconnected_datapaths": None}
    try:
        with state.read() as session:
            body["disconnected_datapaths"] = list(session.scalars(
                select(m.Datapath.uuid).where(m.Datapath.is_connected.is_(False))
                .order_by(m.Datapath.uuid)))
    except SQLAlchemyError:
        body["database"] = "unavailable"
    try:
        body["seq"] = state.call("health", timeout_ms=state.health_timeout_ms)["seq"]
    except ApiError:
        body["vnmgr"] = "unavailable"
    if body["vnmgr"] != "ok" or body["database"] != "ok":
        body["status"] = "unavailable"
        return body, 503
    if body["disconnected_datapaths"]:
        body["status"] = "degraded"
    return body, 200


def datapath_status_view(uuid: str) -> Any:
    """The datapath's row joined with what its vna last reported to vnmgr."""
    with backend().read() as session:
        datapath = reads.find(session, "datapaths", uuid)
        node_id, is_connected = datapath.node_id, datapath.is_connected
    agents = backend().call("agents")
    agent = agents["agents"].get(node_id)
    if agent is not None and agent.get("datapath_uuid") not in (None, uuid):
        # That vna runs another datapath with the same node_id: not this one's agent.
        agent = None
    return {"datapath_uuid": uuid, "node_id": node_id, "is_connected": is_connected,
            "seq": agents["seq"], "agent": agent}
