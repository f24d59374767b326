"""Join resources: a row tying two others together, added and removed as a pair.

Which joins exist and what their two ends are comes from the resource registry
(`vnet.registry.JOINS`); what a particular join adds beyond its two ends (a MAC of its
own, a host interface) is a list of prepare hooks declared here, so the create and delete
handlers are the same for all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from vnet import models as m
from vnet import registry
from vnet.errors import ApiError, conflict
from vnet.serialize import Row
from vnmgr.handlers.tx import Handler, Tx, handler
from vnmgr.handlers.vifs import vif
from vnmgr.params import Params

# Called with the new join row (both ends already set, not yet added) to fill in or
# check its own columns; raises ApiError to refuse the request.
Prepare = Callable[[Tx, Any, Params], None]


@dataclass(frozen=True)
class End:
    """One side of a join: the request field naming it, its model, the join's column."""

    field: str
    model: type[m.Resource]
    column: str

    @classmethod
    def of(cls, join: registry.Join, field: str, resource: str) -> End:
        """The end of a registry join named by `field` (its parent or child field)."""
        column = next(f.column for f in join.resource.all_fields() if f.name == field)
        return cls(field, m.MODELS[resource], column)


@dataclass(frozen=True)
class JoinSpec:
    """A join resource; `right` is the member added to `left` (the error messages'
    "<right> is already added to <left>" and the field they blame)."""

    resource: str
    model: type[m.Resource]
    left: End
    right: End
    prepare: tuple[Prepare, ...] = ()

    def ends(self, tx: Tx, params: Params) -> tuple[Any, Any, Any]:
        """(left row, right row, the existing join of the two or None); raises
        ApiError(422/404, field) when an end is missing or unknown."""
        lobj = tx.ref(self.left.model, params, self.left.field)
        robj = tx.ref(self.right.model, params, self.right.field)
        existing = tx.session.scalar(select(self.model).where(
            getattr(self.model, self.left.column) == lobj.id,
            getattr(self.model, self.right.column) == robj.id))
        return lobj, robj, existing


def own_mac(column: str, field: str) -> Prepare:
    """Hook: the join's `column` gets the unique MAC in `field`, or a free one."""
    def prepare(tx: Tx, join: Any, params: Params) -> None:
        setattr(join, column, tx.unique_mac(params, field))
    return prepare


def host_interface(tx: Tx, join: Any, params: Params) -> None:
    """Hook: the optional `interface_uuid` of the interface that stands for the
    datapath on this network or route link."""
    host = tx.ref(m.Interface, params, "interface_uuid", required=False)
    join.interface_id = host.id if host else None


def vif_member(tx: Tx, _join: Any, params: Params) -> None:
    """Hook: only a vif joins a security group (ApiError(422, "interface_uuid"))."""
    vif(tx, params)


# Hooks per join resource; a join without an entry has none.
HOOKS: dict[str, tuple[Prepare, ...]] = {
    "datapath_networks": (own_mac("broadcast_mac_address", "broadcast_mac_address"),
                          host_interface),
    "datapath_route_links": (own_mac("mac_address", "mac_address"), host_interface),
    "interface_security_groups": (vif_member,),
}


def spec_of(join: registry.Join) -> JoinSpec:
    """The registry's join (child added to parent) with this module's hooks."""
    name = join.resource.name
    return JoinSpec(name, m.MODELS[name], End.of(join, join.parent_field, join.parent),
                    End.of(join, join.child_field, join.child), HOOKS.get(name, ()))


JOINS = tuple(spec_of(join) for join in registry.JOINS)
_unknown = set(HOOKS) - {spec.resource for spec in JOINS}
assert not _unknown, f"hooks for joins the registry does not declare: {_unknown}"


def create_handler(spec: JoinSpec) -> Handler:
    """Adds right to left: raises ApiError(409, right field) when already added, and
    whatever the spec's prepare hooks raise, in their order."""
    def create(tx: Tx, _uuid: str | None, params: Params) -> Row:
        lobj, robj, existing = spec.ends(tx, params)
        if existing is not None:
            raise conflict(spec.right.field, f"{robj.uuid} is already added to {lobj.uuid}")
        join = spec.model(uuid=tx.new_uuid(spec.resource, params))
        setattr(join, spec.left.column, lobj.id)
        setattr(join, spec.right.column, robj.id)
        for prepare in spec.prepare:
            prepare(tx, join, params)
        return tx.row(tx.changes.add(join))
    return create


def delete_handler(spec: JoinSpec) -> Handler:
    """Removes the join by its uuid, else by its two ends: raises ApiError(404, right
    field) when right is not added to left."""
    def delete(tx: Tx, uuid: str | None, params: Params) -> Row:
        if uuid is not None:
            return tx.changes.delete(tx.get(spec.model, uuid))
        lobj, robj, existing = spec.ends(tx, params)
        if existing is None:
            raise ApiError(404, f"{robj.uuid} is not added to {lobj.uuid}", spec.right.field)
        return tx.changes.delete(existing)
    return delete


for _spec in JOINS:
    handler("create", _spec.resource)(create_handler(_spec))
    handler("delete", _spec.resource)(delete_handler(_spec))
