"""Collects what one write transaction changed, as the event agents will receive."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from vnet import models as m
from vnet.serialize import Row, serialize

RESOURCE_OF = {model: name for name, model in m.MODELS.items()}


class ChangeSet:
    def __init__(self, session: Session) -> None:
        self.session = session
        self._upserts: dict[tuple[str, str], m.Resource] = {}
        self._deletes: list[dict[str, Any]] = []

    def add(self, obj: m.Resource) -> m.Resource:
        self.session.add(obj)
        self.session.flush()
        self._upserts[(RESOURCE_OF[type(obj)], obj.uuid)] = obj
        return obj

    def touch(self, obj: m.Resource) -> m.Resource:
        self.session.flush()
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
        upserts = [
            {"resource": resource, "uuid": uuid, "op": "upsert",
             "data": serialize(self.session, obj)}
            for (resource, uuid), obj in self._upserts.items()
        ]
        return upserts + self._deletes
