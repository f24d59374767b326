"""ModelStore: the agent's copy of the model slice, updated by vnmgr change events.

Resources are replaced copy-on-write, so a View built on an earlier model keeps seeing
that version: dirty tracking compares the view before and after one event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from vna.view import RESOURCES, Row


@dataclass(frozen=True)
class Change:
    resource: str
    uuid: str
    old: Row | None
    new: Row | None


class ModelStore:
    def __init__(self) -> None:
        self._model: dict[str, dict[str, Row]] = {r: {} for r in RESOURCES}
        self.seq = 0

    @property
    def model(self) -> Mapping[str, Mapping[str, Row]]:
        return self._model

    def load(self, snapshot_model: Mapping[str, Mapping[str, Row]], seq: int = 0) -> list[Change]:
        """Replace everything; returns the difference to the previous model so a resync
        after a reconnect can be applied incrementally."""
        new: dict[str, dict[str, Row]] = {r: {} for r in RESOURCES}
        for resource, rows in snapshot_model.items():
            new[resource] = dict(rows)
        changes = []
        for resource in sorted(set(new) | set(self._model)):
            before, after = self._model.get(resource, {}), new.get(resource, {})
            for uuid in sorted(set(before) | set(after)):
                old, row = before.get(uuid), after.get(uuid)
                if old != row:
                    changes.append(Change(resource, uuid, old, row))
        self._model = new
        self.seq = seq
        return changes

    def apply(self, changes: Iterable[Mapping[str, Any]], seq: int | None = None) -> list[Change]:
        """Apply one event's changes ({resource, uuid, op, data}); returns the effective
        ones (a no-op upsert or a delete of an unknown row is dropped)."""
        model = dict(self._model)
        copied: set[str] = set()
        out = []
        for item in changes:
            resource, uuid = item["resource"], item["uuid"]
            if resource not in copied:
                model[resource] = dict(model.get(resource, {}))
                copied.add(resource)
            rows = model[resource]
            old = rows.get(uuid)
            if item["op"] == "delete":
                new = None
                rows.pop(uuid, None)
            elif item["op"] == "upsert":
                new = dict(item["data"])
                rows[uuid] = new
            else:
                raise ValueError(f"unknown change op {item['op']!r}")
            if old != new:
                out.append(Change(resource, uuid, old, new))
        self._model = model
        if seq is not None:
            self.seq = seq
        return out
