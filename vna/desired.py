"""DesiredState: the flows this datapath should have, grouped by owner.

An owner key names the model object a group of flows is derived from (vna.feature).
Each owner's flows are the union of what every feature computes for it, a pure function
of the View, so any owner can be recomputed alone; vna.dirty decides which owners a model
change touches.

Conjunction clauses are the exception to "one flow, one owner": a flow whose actions are
all conjunction() is a *contribution*, and every owner's contributions to one (table,
priority, match) are merged into a single installed flow carrying all their
conjunction()s (OpenFlow has one flow per match; OVN's ofctrl merges the same way).  So a
port match `tcp_dst=22` shared by the rules of many security groups, or a member's
address that several rules name, is one flow whose actions grow with the rules, and an
owner's change touches only the merged flows of the matches it contributes to.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence

from vna.actions import Conjunction
from vna.feature import DATAPATH, OWNER_RESOURCES, Feature, OwnerKey
from vna.features import FEATURES
from vna.flows import OBJ_MASK, Flow, Match
from vna.pipeline import KIND_CLAUSE
from vna.view import View

Slot = tuple[int, int, Match]  # (table, priority, match): what OFPFC_ADD replaces

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


def is_clause(flow: Flow) -> bool:
    """A conjunction clause contribution: every action is conjunction()."""
    return bool(flow.actions) and all(isinstance(a, Conjunction) for a in flow.actions)


def merged_clause(slot: Slot, actions: Iterable[Conjunction]) -> Flow:
    """The installed flow of a slot: its contributions' conjunction()s, sorted (so the
    cookie depends only on the set), under KIND_CLAUSE with a 24-bit hash of the slot
    as obj_id (flows of different slots never share a cookie unless 56 bits collide)."""
    table, priority, match = slot
    conj = tuple(sorted(set(actions), key=lambda a: (a.conj_id, a.clause, a.n_clauses)))
    obj = zlib.crc32(repr(slot).encode()) & OBJ_MASK
    return Flow(table, priority, match, conj, kind=KIND_CLAUSE, obj_id=obj)


class DesiredState:
    """features: which features to compute (all by default; tests restrict it to check
    one feature's dependency rule alone)."""

    def __init__(self, features: Sequence[Feature] = FEATURES) -> None:
        self.features = tuple(features)
        self._by_owner: dict[OwnerKey, dict[int, Flow]] = {}
        self._flows: dict[int, Flow] = {}
        self._owner_of: dict[int, OwnerKey] = {}
        # conjunction contributions: owner -> slot -> its conjunction()s there, and
        # slot -> owner -> the same (to merge a slot), slot -> its installed flow
        self._clauses_of: dict[OwnerKey, dict[Slot, frozenset[Conjunction]]] = {}
        self._contributors: dict[Slot, dict[OwnerKey, frozenset[Conjunction]]] = {}
        self._merged: dict[Slot, Flow] = {}
        self.recomputations = 0

    def flows(self) -> dict[int, Flow]:
        return dict(self._flows)

    def owner_of(self, cookie: int) -> OwnerKey | None:
        """The owner whose flow has this cookie (DATAPATH for merged conjunction clauses);
        None for a cookie not desired here.  vnctl trace names model objects by it."""
        return self._owner_of.get(cookie)

    def owner_flows(self, key: OwnerKey) -> list[Flow]:
        """The owner's own flows (not the merged clause flows it contributes to)."""
        return list(self._by_owner.get(key, {}).values())

    def rebuild(self, view: View) -> tuple[list[Flow], list[Flow]]:
        """Recompute every owner; returns (added, removed) against the previous state."""
        return self.update(view, owners(view) | set(self._by_owner) | set(self._clauses_of))

    def update(self, view: View, dirty: Iterable[OwnerKey]) -> tuple[list[Flow], list[Flow]]:
        added: list[Flow] = []
        removed: list[Flow] = []
        touched: set[Slot] = set()
        for key in sorted(set(dirty)):
            self.recomputations += 1
            computed = compute(view, key, self.features)
            touched |= self._contribute(key, [f for f in computed if is_clause(f)])
            new = {f.cookie: f for f in computed if not is_clause(f)}
            old = self._by_owner.pop(key, {})
            for cookie in old.keys() - new.keys():
                removed.append(self._flows.pop(cookie))
                del self._owner_of[cookie]
            for cookie in new.keys() - old.keys():
                self._claim(key, new[cookie])
                added.append(new[cookie])
            if new:
                self._by_owner[key] = new
        for slot in sorted(touched, key=repr):
            self._remerge(slot, added, removed)
        return added, removed

    def _contribute(self, key: OwnerKey, clauses: list[Flow]) -> set[Slot]:
        """Record an owner's new contributions; returns the slots whose set changed."""
        new: dict[Slot, set[Conjunction]] = {}
        for flow in clauses:
            new.setdefault((flow.table, flow.priority, flow.match), set()).update(flow.actions)
        old = self._clauses_of.pop(key, {})
        frozen = {slot: frozenset(conj) for slot, conj in new.items()}
        if frozen:
            self._clauses_of[key] = frozen
        changed = {slot for slot in old.keys() | frozen.keys()
                   if old.get(slot) != frozen.get(slot)}
        for slot in changed:
            contributors = self._contributors.setdefault(slot, {})
            if slot in frozen:
                contributors[key] = frozen[slot]
            else:
                contributors.pop(key, None)
            if not contributors:
                del self._contributors[slot]
        return changed

    def _remerge(self, slot: Slot, added: list[Flow], removed: list[Flow]) -> None:
        contributors = self._contributors.get(slot)
        new = (merged_clause(slot, (a for conj in contributors.values() for a in conj))
               if contributors else None)
        old = self._merged.pop(slot, None)
        if old is not None and new is not None and old.cookie == new.cookie:
            self._merged[slot] = old
            return
        if old is not None:
            removed.append(self._flows.pop(old.cookie))
            del self._owner_of[old.cookie]
        if new is not None:
            self._claim(DATAPATH, new)
            self._merged[slot] = new
            added.append(new)

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
