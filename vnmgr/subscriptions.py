"""Which agent gets which change: each node's slice, kept current event by event.

vnmgr keeps the whole model in memory (`vnet.slice.ModelIndex`, updated from its own
events) and, per node (an agent, by its `node_id`), the set of rows its slice holds and a
message counter `n`.  An event goes to a node only with the rows of its slice; when a
change moves the slice itself (a VM bound on the node's datapath, a route to a new
network, a port that appears on its bridge) the node also gets the rows entering it as
upserts and the rows leaving it as deletes, so its copy always equals its slice
(docs/messaging.md, "Slices").
"""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vnet.slice import (
    GLOBAL_RESOURCES,
    NAMING_CHILDREN,
    REFS,
    RESOURCES,
    Interest,
    Key,
    ModelIndex,
    Row,
    Watch,
    in_slice,
    interest,
    own_keys,
    shared_keys,
    slice_model,
)

log = logging.getLogger("vnmgr.subscriptions")

Change = dict[str, Any]
# Rows whose presence decides whether the interface they name is in a slice.
_NAMES_ITS_INTERFACE = frozenset({"ip_leases", "datapath_networks", "routes",
                                  "datapath_route_links"})
# A change of these fields of a row can move slices (module vnet.slice).
_INTEREST_FIELDS = {
    "datapaths": ("node_id", "dpid"),
    "interfaces": ("owner_datapath_uuid", "port_name", "mode"),
    "security_groups": ("rules",),
}


@dataclass
class Node:
    """One agent's subscription: what it watches, its slice's keys, its datapaths, the
    number of the last message sent on its topic."""

    node_id: str
    watch: Watch
    keys: set[Key] = field(default_factory=set)  # its own rows, beyond the shared ones
    datapaths: set[str] = field(default_factory=set)
    interest: Interest = field(default_factory=Interest)
    n: int = 0
    seen_at: float = field(default_factory=time.monotonic)  # its last snapshot/watch/status


class Subscriptions:
    def __init__(self, index: ModelIndex) -> None:
        self.index = index
        # The rows in every slice (vnet.slice.shared_keys): kept once, not per node.
        self.shared: set[Key] = shared_keys(index)
        self.nodes: dict[str, Node] = {}
        self.recomputed = 0  # slices recomputed in full (metrics)
        self.incremental = 0  # slices updated row by row

    # ------------------------------------------------------------ agents
    def register(self, node_id: str, watch: Watch) -> tuple[dict[str, dict[str, Row]], int]:
        """A snapshot of the node's slice and the number of the last message sent on its
        topic (messages up to it are in the snapshot)."""
        node = self.nodes.get(node_id)
        if node is None:
            node = self.nodes[node_id] = Node(node_id, watch)
        node.watch = watch
        node.seen_at = time.monotonic()
        self._recompute(node)
        return slice_model(self.index, node.keys | self.shared), node.n

    def expire(self, idle: float) -> list[str]:
        """Forget the nodes not heard from (snapshot, watch, status) for `idle` seconds;
        one that comes back is told to resync (vnmgr.service)."""
        now = time.monotonic()
        gone = [n for n, node in self.nodes.items() if now - node.seen_at > idle]
        for node_id in gone:
            del self.nodes[node_id]
        return gone

    def set_watch(self, node_id: str, watch: Watch) -> list[tuple[Node, list[Change]]]:
        """The message for the node if its new watch moves its slice."""
        node = self.nodes.get(node_id)
        if node is not None:
            node.seen_at = time.monotonic()
        if node is None or node.watch == watch:
            return []
        node.watch = watch
        changes = self._reinterest(node, [], {}, {})
        return [(node, changes)] if changes else []

    # ------------------------------------------------------------ events
    def on_event(self, changes: list[Change]) -> list[tuple[Node, list[Change]]]:
        """Applies an event to the index; returns each node's part of it (nodes with
        nothing to receive are left out)."""
        index = self.index
        olds = {(c["resource"], c["uuid"]): index.row(c["resource"], c["uuid"])
                for c in changes}
        moved = self._nodes_moved(changes, olds)
        touched = self._touched_keys(changes, olds)
        shared_moves = self._shared_moves(changes, olds)
        index.apply(changes)
        by_key = {(c["resource"], c["uuid"]): c for c in changes}
        out: list[tuple[Node, list[Change]]] = []
        if shared_moves:
            # Datapaths or hosts came or went (rare): every slice is cut again.
            old_shared, self.shared = self.shared, shared_keys(index)
            for node in self.nodes.values():
                old = node.keys | old_shared
                self._recompute(node)
                part = self._diff(old, node.keys | self.shared, by_key)
                if part:
                    out.append((node, part))
            return out
        shared_part = [c for k, c in by_key.items() if k in self.shared]
        for node in self.nodes.values():
            if node.node_id in moved or self._moves_interest(node, changes, olds):
                part = self._reinterest(node, changes, olds, by_key) + shared_part
            elif not node.keys.isdisjoint(touched):
                part = self._incremental(node, changes, olds, by_key) + shared_part
            else:
                part = shared_part  # one list: vnmgr.service encodes it once
            if part:
                out.append((node, part))
        return out

    def _shared_moves(self, changes: list[Change], olds: Mapping[Key, Row | None]) -> bool:
        """Whether the event may add rows to the shared part or take rows out of it: a
        global row or host interface created or deleted, a shared row deleted or
        re-pointed, a row whose references all point into it, a lease or join that
        makes its interface part of it."""
        shared = self.shared
        for c in changes:
            resource, uuid = c["resource"], c["uuid"]
            key = (resource, uuid)
            old, new = olds.get(key), c.get("data") if c["op"] == "upsert" else None
            refs = REFS[resource]
            if key in shared:
                if (new is None or any(old.get(k) != new.get(k) for k, _p in refs)
                        or (resource == "interfaces" and old.get("mode") != new.get("mode"))):
                    return True
                continue
            if resource in GLOBAL_RESOURCES:
                return True
            for row in (old, new):
                if not row:
                    continue
                if resource == "interfaces" and row.get("mode") == "host":
                    return True
                named = [(p, row[k]) for k, p in refs
                         if p not in GLOBAL_RESOURCES and row.get(k) is not None]
                if named and all(n in shared for n in named):
                    return True
                if resource in _NAMES_ITS_INTERFACE and any(
                        n in shared for n in named if n[0] != "interfaces"):
                    return True
        return False

    def _moves_interest(self, node: Node, changes: list[Change],
                        olds: Mapping[Key, Row | None]) -> bool:
        """Whether the event may change the node's L, S or route links (vnet.slice):
        a lease of a local or host interface or of a group member, a route on a network
        of its slice or of one of its route links, a network of it, a local interface."""
        it = node.interest
        for c in changes:
            resource = c["resource"]
            if resource not in ("ip_leases", "routes", "interfaces", "networks"):
                continue
            for row in (olds.get((resource, c["uuid"])), c.get("data")):
                if not row:
                    continue
                if resource == "interfaces" and c["uuid"] in it.local:
                    return True
                if resource == "ip_leases" and (row["interface_uuid"] in it.local
                                                or row["interface_uuid"] in self.index.hosts
                                                or (it.groups and row["network_uuid"]
                                                    not in it.networks)):
                    return True
                if resource == "routes" and (row["network_uuid"] in it.networks
                                             or row["route_link_uuid"] in it.route_links):
                    return True
                if resource == "networks" and c["uuid"] in it.networks:
                    return True  # its mode or subnet decides whether routing crosses it
        return False

    def _reinterest(self, node: Node, changes: list[Change], olds: Mapping[Key, Row | None],
                    event: Mapping[Key, Change]) -> list[Change]:
        """The node's part of an event (or watch) that may move its interest: the interest
        computed again (O(its local interfaces and their routing domain), vnet.slice
        .interest), then, row by row (_incremental), the rows the event changed plus the
        roots that entered or left the interest with the interfaces they name.  A full
        recompute (own_keys) was O(slice): 38 ms per VM arrival at 2,000 interfaces."""
        old = node.interest
        node.datapaths = self.index.datapaths_of(node.node_id, node.watch)
        node.interest = interest(self.index, node.datapaths, node.watch)
        return self._incremental(node, changes, olds, event,
                                 self._interest_seeds(old, node.interest))

    def _interest_seeds(self, old: Interest, new: Interest) -> list[Key]:
        """The roots whose membership the change from `old` to `new` can flip: networks,
        route links and local interfaces that entered or left, and the interfaces the
        moved networks and route links name (their leases, joins and routes); what hangs
        below them follows in _incremental."""
        index, model = self.index, self.index.model
        moved = {"networks": old.networks ^ new.networks,
                 "route_links": old.route_links ^ new.route_links}
        seeds: list[Key] = [("interfaces", i) for i in old.local ^ new.local]
        seeds += [(kind, uuid) for kind, uuids in moved.items() for uuid in uuids]
        for child, _key, kind in NAMING_CHILDREN:  # in_slice's rule for interfaces
            rows = model[child]
            seeds += [("interfaces", rows[c]["interface_uuid"])
                      for root in moved[kind] for c in index.kids(kind, root, child)
                      if rows[c].get("interface_uuid")]
        return seeds

    def _incremental(self, node: Node, changes: list[Change], olds: Mapping[Key, Row | None],
                     event: Mapping[Key, Change], seeds: Iterable[Key] = ()) -> list[Change]:
        """The node's part of an event under its current interest: each changed row, the
        interface a changed lease/join/route names, and each of `seeds` is judged again
        (vnet.slice.in_slice), then the children of any row that entered or left."""
        index, it, keys, shared = self.index, node.interest, node.keys, self.shared
        entering: set[Key] = set()
        leaving: set[Key] = set()

        def member(key: Key) -> bool:
            return key in shared or key in entering or (key in keys and key not in leaving)

        order = {r: i for i, r in enumerate(RESOURCES)}
        queue: list[tuple[int, str, str]] = []
        for c in changes:
            resource = c["resource"]
            heapq.heappush(queue, (order[resource], resource, c["uuid"]))
            for row in (olds.get((resource, c["uuid"])), c.get("data")):
                if row and resource in _NAMES_ITS_INTERFACE and row.get("interface_uuid"):
                    heapq.heappush(queue, (order["interfaces"], "interfaces",
                                           row["interface_uuid"]))
        for resource, uuid in seeds:
            heapq.heappush(queue, (order[resource], resource, uuid))
        seen: set[Key] = set()
        while queue:
            _, resource, uuid = heapq.heappop(queue)
            key = (resource, uuid)
            if key in seen or key in shared:
                continue
            seen.add(key)
            was, now = member(key), in_slice(index, it, resource, uuid, member)
            if was == now:
                continue
            if now:
                leaving.discard(key)
                if key not in keys:
                    entering.add(key)
            else:
                entering.discard(key)
                if key in keys:
                    leaving.add(key)
            for child, uuids in index.children.get(key, {}).items():
                for u in uuids:
                    heapq.heappush(queue, (order[child], child, u))
        old_member = {k for k in event if k in keys}
        keys -= leaving
        keys |= entering
        self.incremental += 1
        return self._changes(old_member, keys, entering, leaving, event)

    def _touched_keys(self, changes: list[Change], olds: Mapping[Key, Row | None]
                      ) -> set[Key]:
        """Non-global rows whose presence in a slice means the node must look again: the
        changed rows and their non-global parents, before and after."""
        touched: set[Key] = set()
        for c in changes:
            resource = c["resource"]
            if resource in GLOBAL_RESOURCES:
                continue
            touched.add((resource, c["uuid"]))
            for row in (olds.get((resource, c["uuid"])), c.get("data")):
                for key, parent in REFS[resource]:
                    if row and row.get(key) is not None and parent not in GLOBAL_RESOURCES:
                        touched.add((parent, row[key]))
        return touched

    def _nodes_moved(self, changes: list[Change], olds: Mapping[Key, Row | None]) -> set[str]:
        """Nodes whose slice may move for reasons their current keys cannot show: a row
        naming one of their datapaths, an interface they watch, a datapath of theirs, a
        security group change (rules, membership)."""
        datapaths: set[str] = set()
        identities: set[tuple[str, str]] = set()  # ("node_id"|"dpid", value) of datapaths
        names: set[str] = set()
        ifaces: set[str] = set()
        groups: set[str] = set()  # security groups whose membership or rules changed
        members: set[str] = set()  # interfaces that joined or left a group
        for c in changes:
            resource, uuid = c["resource"], c["uuid"]
            rows = [r for r in (olds.get((resource, uuid)), c.get("data")) if r]
            if resource == "datapaths":
                fields = _INTEREST_FIELDS["datapaths"]
                if len({tuple(r.get(f) for f in fields) for r in rows}) != 1 or len(rows) < 2:
                    datapaths.add(uuid)
                    identities |= {(f, r[f]) for r in rows for f in fields if r.get(f)}
            elif resource in ("interface_security_groups", "security_groups"):
                if resource == "interface_security_groups":
                    groups |= {r["security_group_uuid"] for r in rows}
                    members |= {r["interface_uuid"] for r in rows}
                elif len({r.get("rules") for r in rows}) != 1 or len(rows) < 2:
                    groups.add(uuid)
            for row in rows:
                for key, parent in REFS[resource]:
                    if parent == "datapaths" and row.get(key):
                        datapaths.add(row[key])
                if resource == "interfaces":
                    ifaces.add(uuid)
                    if row.get("port_name"):
                        names.add(row["port_name"])
                    if row.get("mode") == "host":
                        return set(self.nodes)  # the underlay moved: every slice
        moved = set()
        for node in self.nodes.values():
            if (not node.datapaths.isdisjoint(datapaths)
                    or not node.watch.iface_ids.isdisjoint(ifaces)
                    or not node.watch.port_names.isdisjoint(names)
                    or ("node_id", node.node_id) in identities
                    or ("dpid", node.watch.dpid) in identities
                    or not node.interest.groups.isdisjoint(groups)
                    or not node.interest.local.isdisjoint(members)):
                moved.add(node.node_id)
        return moved

    # ------------------------------------------------------------ slices
    def _recompute(self, node: Node) -> None:
        node.datapaths = self.index.datapaths_of(node.node_id, node.watch)
        node.interest = interest(self.index, node.datapaths, node.watch)
        node.keys = own_keys(self.index, node.interest, self.shared)
        self.recomputed += 1

    def _diff(self, old: set[Key], new: set[Key], event: Mapping[Key, Change]
              ) -> list[Change]:
        """The changes that turn a copy of slice `old` into slice `new` after `event`."""
        return self._changes({k for k in event if k in old}, new, new - old, old - new, event)

    def _changes(self, old_member: set[Key], new: set[Key], entering: set[Key],
                 leaving: set[Key], event: Mapping[Key, Change]) -> list[Change]:
        """The event's changes of rows in the slice before (`old_member`: those of the
        event's keys that were in it) or after (`new`), then rows entering as upserts and
        rows leaving as deletes (with their row)."""
        model = self.index.model
        out: list[Change] = []
        for key, change in event.items():
            if key in new:
                out.append(change)
            elif key in old_member:
                row = change.get("data") or model[key[0]].get(key[1])
                out.append({"resource": key[0], "uuid": key[1], "op": "delete", "data": row})
        for key in entering:
            if key not in event:
                out.append({"resource": key[0], "uuid": key[1], "op": "upsert",
                            "data": model[key[0]][key[1]]})
        for key in leaving:
            if key not in event:
                out.append({"resource": key[0], "uuid": key[1], "op": "delete",
                            "data": model[key[0]].get(key[1])})
        return out


def all_changes(model: Mapping[str, Mapping[str, Row]]) -> Iterable[Change]:
    """Every row of a model as an upsert (tests and reloads)."""
    for resource, rows in model.items():
        for uuid, row in rows.items():
            yield {"resource": resource, "uuid": uuid, "op": "upsert", "data": row}
