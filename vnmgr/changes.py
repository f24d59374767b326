"""Collects what one write transaction changed, as the event agents will receive."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from vnet import models as m
from vnet.serialize import Row, serialize

RESOURCE_OF = {model: name for name, model in m.MODELS.items()}


class ChangeSet:
    def __init__(self, session: Session) -> None:
        self.session = session
        self._upserts: dict[tuple[str, str], m.Resource] = {}
        self._deletes: list[dict[str, Any]] = []
        # Rows a flush of this transaction wrote with a net change. Noted at each flush
        # because a flush (any query autoflushes) resets what is_modified() can see.
        self._modified: set[int] = set()
        event.listen(session, "before_flush", self._note_modified)

    def _note_modified(self, session: Session, *_args: Any) -> None:
        self._modified.update(id(obj) for obj in session.dirty if session.is_modified(obj))

    def add(self, obj: m.Resource) -> m.Resource:
        self.session.add(obj)
        self.session.flush()
        self._upserts[(RESOURCE_OF[type(obj)], obj.uuid)] = obj
        return obj

    def touch(self, obj: m.Resource) -> m.Resource:
        """Record obj as changed, unless nothing of it changed since it was loaded (an
        update to the same values is no change and makes no event)."""
        self.session.flush()
        if id(obj) in self._modified:
            self._upserts[(RESOURCE_OF[type(obj)], obj.uuid)] = obj
        return obj

    def delete(self, obj: m.Resource) -> Row:
        """Serialise first: once deleted, the row's references can no longer be resolved."""
        resource = RESOURCE_OF[type(obj)]
        row = serialize(self.session, obj)
        self._upserts.pop((resource, obj.uuid), None)
        self._deletes.append({"resource": resource, "uuid": obj.uuid, "op": "delete",
                              "data": row})
        self.session.delete(obj)
        self.session.flush()
        return row

    def changes(self) -> list[dict[str, Any]]:
        """The event's changes (empty when the write changed nothing); ends the
        collection."""
        if event.contains(self.session, "before_flush", self._note_modified):
            event.remove(self.session, "before_flush", self._note_modified)
        upserts = [
            {"resource": resource, "uuid": uuid, "op": "upsert",
             "data": serialize(self.session, obj)}
            for (resource, uuid), obj in self._upserts.items()
        ]
        return upserts + self._deletes
