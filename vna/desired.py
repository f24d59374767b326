"""DesiredState: the flows this datapath should have, grouped by owner.

An owner key names the model object a group of flows is derived from (vna.feature).
Each owner's flows are the union of what every feature computes for it, a pure function
of the View, so any owner can be recomputed alone; vna.dirty decides which owners a model
change touches.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from vna.feature import DATAPATH, OWNER_RESOURCES, Feature, OwnerKey
from vna.features import FEATURES
from vna.flows import Flow
from vna.view import View

__all__ = ["DATAPATH", "OwnerKey", "DesiredState", "owners", "compute"]


class CookieCollision(RuntimeError):
    """Two different desired flows share a cookie (a crc32 collision or a bug)."""


def owners(view: View) -> set[OwnerKey]:
    keys: set[OwnerKey] = {DATAPATH}
    for owner_type, resource in OWNER_RESOURCES.items():
        keys.update((owner_type, uuid) for uuid in view.uuids(resource))
    return keys


def compute(view: View, key: OwnerKey, features: Sequence[Feature] = FEATURES) -> list[Flow]:
    owner_type, *args = key
    if owner_type != "datapath" and view.row(OWNER_RESOURCES[owner_type], args[0]) is None:
        return []
    return [flow for feature in features for flow in feature.flows(view, key)]


class DesiredState:
    """features: which features to compute (all by default; tests restrict it to check
    one feature's dependency rule alone)."""

    def __init__(self, features: Sequence[Feature] = FEATURES) -> None:
        self.features = tuple(features)
        self._by_owner: dict[OwnerKey, dict[int, Flow]] = {}
        self._flows: dict[int, Flow] = {}
        self._owner_of: dict[int, OwnerKey] = {}
        self.recomputations = 0

    def flows(self) -> dict[int, Flow]:
        return dict(self._flows)

    def owner_flows(self, key: OwnerKey) -> list[Flow]:
        return list(self._by_owner.get(key, {}).values())

    def rebuild(self, view: View) -> tuple[list[Flow], list[Flow]]:
        """Recompute every owner; returns (added, removed) against the previous state."""
        return self.update(view, owners(view) | set(self._by_owner))

    def update(self, view: View, dirty: Iterable[OwnerKey]) -> tuple[list[Flow], list[Flow]]:
        added: list[Flow] = []
        removed: list[Flow] = []
        for key in sorted(set(dirty)):
            self.recomputations += 1
            new = {f.cookie: f for f in compute(view, key, self.features)}
            old = self._by_owner.pop(key, {})
            for cookie in old.keys() - new.keys():
                removed.append(self._flows.pop(cookie))
                del self._owner_of[cookie]
            for cookie in new.keys() - old.keys():
                self._claim(key, new[cookie])
                added.append(new[cookie])
            if new:
                self._by_owner[key] = new
        return added, removed

    def _claim(self, key: OwnerKey, flow: Flow) -> None:
        holder = self._owner_of.get(flow.cookie)
        if holder is not None:
            raise CookieCollision(f"{flow} of {key} collides with {self._flows[flow.cookie]}")
        self._flows[flow.cookie] = flow
        self._owner_of[flow.cookie] = key

    def conflicts(self) -> list[tuple[Flow, Flow]]:
        """Pairs of desired flows OFPFC_ADD would collapse (same table/priority/match,
        different content).  Always empty unless the model is inconsistent (e.g. two
        interfaces leasing one address on one network)."""
        seen: dict[tuple, Flow] = {}
        out = []
        for flow in sorted(self._flows.values(), key=lambda f: f.cookie):
            slot = (flow.table, flow.priority, flow.match)
            if slot in seen:
                out.append((seen[slot], flow))
            else:
                seen[slot] = flow
        return out
