"""The transaction a handler writes through, and the table of handlers.

Each handler runs inside one database transaction (see vnmgr.service); it raises
ApiError on bad input before anything is committed, so a rejected request changes
nothing. A handler returns the row the API answers with; what it added, touched or
deleted through `tx.changes` becomes the event agents receive.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vnet import models as m
from vnet.errors import ApiError, conflict, invalid, not_found
from vnet.registry import TEXT_MAX_LEN, UUID_MAX_LEN
from vnet.serialize import Row, serialize
from vnmgr.allocate import allocate_mac, mac_in_use
from vnmgr.changes import ChangeSet
from vnmgr.params import Params


class Tx:
    """One write: the session plus look-ups that fail with the request field to blame."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.changes = ChangeSet(session)
        # Every row looked up, held until the transaction ends: the session's identity
        # map keeps rows only weakly, and the event's rows name them (serialize() would
        # load each referenced row again: two more round trips per interface create).
        self._held: list[m.Resource] = []

    def find(self, model: type[m.Resource], uuid: str | None) -> m.Resource | None:
        if uuid is None:
            return None
        obj = self.session.scalar(select(model).where(model.uuid == uuid))
        if obj is not None:
            self._held.append(obj)
        return obj

    def ref(self, model: type[m.Resource], params: Params, field: str,
            required: bool = True) -> Any:
        """The row named by the uuid in `field`, or None when optional and absent;
        raises ApiError(422, field) when required and absent, ApiError(404, field) when
        no such row exists."""
        uuid = params.text(field, required, max_len=UUID_MAX_LEN)
        if uuid is None:
            return None
        obj = self.find(model, uuid)
        if obj is None:
            raise not_found(field, uuid)
        return obj

    def get(self, model: type[m.Resource], uuid: str | None, field: str = "uuid") -> Any:
        """The row with this uuid; raises ApiError(404, field) when there is none."""
        obj = self.find(model, uuid)
        if obj is None:
            raise not_found(field, str(uuid))
        return obj

    def first_with(self, model: type[m.Resource], columns: dict[str, Any]) -> Any:
        """The first row (by id) whose columns equal these values, None matching NULL."""
        return self.session.scalar(select(model).where(
            *(getattr(model, column).is_(None) if value is None
              else getattr(model, column) == value for column, value in columns.items()))
            .order_by(model.id))

    def child(self, model: type[m.Resource], uuid: str, parent: m.Resource,
              parent_column: str, params: Params, match: tuple[str, ...]) -> Any:
        """A nested row named by its uuid (DELETE /<parent>/<p>/<segment>/<uuid>): raises
        ApiError(422, name) for a parameter of `match` given too (those name a row by
        its values instead), ApiError(404, "uuid") unless it is `parent`'s row."""
        for name in match:
            if params.has(name):
                raise invalid(name, f"{name} names a row by its values: give them or the "
                                    "row's uuid, not both")
        obj = self.get(model, uuid)
        if getattr(obj, parent_column) != parent.id:
            raise ApiError(404, f"{uuid} is not a row of {parent.uuid}", "uuid")
        return obj

    def exists(self, model: type[m.Resource], *conditions: Any) -> bool:
        return self.session.scalar(select(func.count()).select_from(model).where(*conditions)) > 0

    def new_uuid(self, resource: str, params: Params | None = None) -> str:
        """The request's `uuid`, or a random one when absent (or without params);
        raises ApiError(422, "uuid") when malformed, ApiError(409, "uuid") when taken."""
        uuid = (params or Params({})).new_uuid(resource)
        if self.find(m.MODELS[resource], uuid) is not None:
            raise conflict("uuid", f"{uuid} already exists")
        return uuid

    def unique_mac(self, params: Params, field: str = "mac_address") -> int:
        """The MAC in `field`, or a free random one when absent; raises
        ApiError(422, field) when malformed, multicast (broadcast included) or all zeros
        (00:00:00:00:00:00 is no station's address, IEEE 802), ApiError(409, field) when any
        lease, route link or join already uses it."""
        mac = params.mac(field)
        if mac is None:
            return allocate_mac(self.session)
        if mac & (1 << 40):
            raise invalid(field, f"{field} must be a unicast MAC address")
        if mac == 0:
            raise invalid(field, f"{field} 00:00:00:00:00:00 is not a usable address")
        if mac_in_use(self.session, mac):
            raise conflict(field, f"{field} {params.text(field)} is already in use")
        return mac

    def row(self, obj: m.Resource) -> Row:
        return serialize(self.session, obj)

    def refuse_if_used(self, what: str, uses: dict[str, tuple[type[m.Resource], Any]]) -> None:
        """Raises ApiError(409, None) naming the first label whose rows still match."""
        for label, (model, condition) in uses.items():
            if self.exists(model, condition):
                raise conflict(None, f"{what} is still used by {label}")

    def delete_where(self, model: type[m.Resource], *conditions: Any) -> None:
        """Delete every matching row, each one reported in the event."""
        for obj in self.session.scalars(select(model).where(*conditions)):
            self.changes.delete(obj)


Handler = Callable[[Tx, str | None, Params], Row]
HANDLERS: dict[tuple[str, str], Handler] = {}


def handler(op: str, resource: str) -> Callable[[Handler], Handler]:
    """Register fn as the handler of (op, resource): create, update or delete."""
    def register(fn: Handler) -> Handler:
        HANDLERS[(op, resource)] = fn
        return fn
    return register


def text_update(resource: str, model: type[m.Resource], *fields: str) -> None:
    """Register the update handler of a resource whose PUT changes only these text
    fields (vnmgr.accept refuses any other)."""
    def update(tx: Tx, uuid: str | None, params: Params) -> Row:
        obj = tx.get(model, uuid)
        apply_text(obj, params, *fields)
        return tx.row(tx.changes.touch(obj))
    handler("update", resource)(update)


def apply_text(obj: m.Resource, params: Params, *fields: str,
               max_len: int = TEXT_MAX_LEN) -> None:
    """Copy each given text field onto obj and clear (set to null) each one sent empty;
    an update leaves absent fields alone. vnmgr.accept has already refused an empty
    value for a field that cannot be null."""
    for field in fields:
        if params.has(field):
            setattr(obj, field, params.text(field, max_len=max_len))
        elif params.clears(field):
            setattr(obj, field, None)


def apply_booleans(obj: m.Resource, params: Params, *fields: str) -> None:
    """Copy each given boolean field onto obj; raises ApiError(422, field) when it is not
    a boolean. vnmgr.accept has already refused an empty one (booleans are never null)."""
    for field in fields:
        if params.has(field):
            setattr(obj, field, params.boolean(field))
