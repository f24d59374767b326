"""Each datapath's slice of the model: the rows its vna needs, and nothing else.

OVN's conditional monitoring, for wakame-vnet: vnmgr sends an agent only the rows its
datapath can use (docs/model-slice.md, "Slices").  The slice of a set of datapaths D is

* **local interfaces** L: interfaces owned by D, claimed on D (any `active_interfaces`
  row there) or **watched** by the agent (a port of its bridge names the interface by
  `iface-id` or by `port_name`, so the agent can claim a VM that arrives there);
* **networks** S: the networks of L's leases; the networks of every router (route link)
  with a route on one of them, and on through every transit network (`_is_transit`) to
  the routers beyond, because the distributed router resolves a whole chain of routers
  at the source; the networks of the members of L's security groups and of the groups
  their rules name (their addresses are rule sources); the networks of host interfaces
  (the underlay);
* **rows**: every datapath and security group (small, global), the networks in S, the
  interfaces with a lease in S plus L, the host interfaces and those the kept
  datapath_networks and routes name, the route links reached; then every other row whose
  references all point into the slice (a lease in a network outside S is left out, and
  with it nothing dangles: the slice is closed under references).

Pure functions over `ModelIndex`, an incrementally maintained index of the whole model
(rows as in model-slice.md: resource -> uuid -> row), so vnmgr recomputes one
datapath's slice in O(its size).
"""

from __future__ import annotations

import ipaddress
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vnet.registry import RESOURCES as REGISTRY

Row = dict[str, Any]
Key = tuple[str, str]  # (resource, uuid)

# From the registry, not the SQLAlchemy models: the vna imports this module and needs no
# database code (0.5 s and tens of MiB).
RESOURCES: tuple[str, ...] = tuple(REGISTRY)  # parents before children
# resource -> ((row key, referenced resource), ...), e.g. ip_leases -> interface_uuid ...
REFS: dict[str, tuple[tuple[str, str], ...]] = {
    r: tuple((f.name, f.ref or "") for f in REGISTRY[r].references().values())
    for r in RESOURCES}
# Rows every slice holds whatever the datapath: few, and read by every datapath.
GLOBAL_RESOURCES = frozenset({"datapaths", "security_groups"})
# A security group rule's source may name another group (vnet.sg_rules).
_GROUP_UUID = re.compile(r"\bsg-[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Watch:
    """What an agent's bridge shows: `dpid` ("0x%016x" or None before the switch
    connects), the `iface-id`s and the names of its ports."""

    dpid: str | None = None
    iface_ids: frozenset[str] = frozenset()
    port_names: frozenset[str] = frozenset()

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None) -> Watch:
        """From the JSON object agents send: {"dpid", "iface_ids": [...],
        "port_names": [...]}; raises ValueError on a wrong shape."""
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            raise ValueError("watch must be an object")
        dpid = params.get("dpid")
        lists = {k: params.get(k) or [] for k in ("iface_ids", "port_names")}
        if dpid is not None and not isinstance(dpid, str):
            raise ValueError("watch.dpid must be a string")
        for name, value in lists.items():
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"watch.{name} must be a list of strings")
        return cls(dpid, frozenset(lists["iface_ids"]), frozenset(lists["port_names"]))

    def to_params(self) -> dict[str, Any]:
        return {"dpid": self.dpid, "iface_ids": sorted(self.iface_ids),
                "port_names": sorted(self.port_names)}


class ModelIndex:
    """The whole model plus the reverse references the slice walks: children of a row by
    resource, interfaces by port name, host interfaces, datapaths by node_id and dpid.
    `apply` takes an event's changes (model-slice.md shape)."""

    def __init__(self, model: Mapping[str, Mapping[str, Row]]) -> None:
        self.model: dict[str, dict[str, Row]] = {r: {} for r in RESOURCES}
        # (parent resource, parent uuid) -> child resource -> {child uuid}
        self.children: dict[Key, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        self.by_port_name: dict[str, set[str]] = defaultdict(set)
        self.hosts: set[str] = set()
        for resource in RESOURCES:
            for uuid, row in (model.get(resource) or {}).items():
                self._add(resource, uuid, row)

    def row(self, resource: str, uuid: str | None) -> Row | None:
        return self.model.get(resource, {}).get(uuid) if uuid is not None else None

    def kids(self, resource: str, uuid: str, child: str) -> set[str]:
        found = self.children.get((resource, uuid))
        return found.get(child, set()) if found is not None else set()

    def apply(self, changes: Iterable[Mapping[str, Any]]) -> None:
        for change in changes:
            resource, uuid = change["resource"], change["uuid"]
            old = self.model.get(resource, {}).get(uuid)
            if old is not None:
                self._remove(resource, uuid, old)
            if change["op"] == "upsert":
                self._add(resource, uuid, change["data"])

    def _add(self, resource: str, uuid: str, row: Row) -> None:
        self.model.setdefault(resource, {})[uuid] = row
        for key, parent in REFS.get(resource, ()):
            if row.get(key) is not None:
                self.children[(parent, row[key])][resource].add(uuid)
        if resource == "interfaces":
            if row.get("port_name"):
                self.by_port_name[row["port_name"]].add(uuid)
            if row.get("mode") == "host":
                self.hosts.add(uuid)

    def _remove(self, resource: str, uuid: str, row: Row) -> None:
        del self.model[resource][uuid]
        for key, parent in REFS.get(resource, ()):
            kids = self.children.get((parent, row.get(key)))
            if kids is not None:
                kids[resource].discard(uuid)
        if resource == "interfaces":
            self.by_port_name.get(row.get("port_name") or "", set()).discard(uuid)
            self.hosts.discard(uuid)

    def datapaths_of(self, node_id: str | None, watch: Watch) -> set[str]:
        """The datapaths an agent runs: those with its node_id, and the one with the dpid
        its switch reported."""
        return {uuid for uuid, dp in self.model["datapaths"].items()
                if (node_id is not None and dp.get("node_id") == node_id)
                or (watch.dpid is not None and dp.get("dpid") == watch.dpid)}


@dataclass
class Interest:
    """What a datapath set's slice is built from (module docstring)."""

    datapaths: set[str] = field(default_factory=set)
    local: set[str] = field(default_factory=set)  # interfaces L
    near: set[str] = field(default_factory=set)  # the networks of L's leases
    networks: set[str] = field(default_factory=set)  # S
    route_links: set[str] = field(default_factory=set)
    groups: set[str] = field(default_factory=set)  # security groups whose members count


def _networks_of(index: ModelIndex, interfaces: Iterable[str]) -> set[str]:
    return {index.model["ip_leases"][lease]["network_uuid"]
            for iface in interfaces for lease in index.kids("interfaces", iface, "ip_leases")}


def is_transit(network: Row | None, routes: Iterable[Row]) -> bool:
    """Whether a routed path can cross `network` from one router to another: it is
    virtual, or one of `routes` (the routes on it) sends onto it, without a next hop, a
    prefix outside its subnet (vna.routers `Topology.resolve` then looks for the next
    router there).  A physical network whose routes all end on it (its own subnet, or a
    next hop) hands packets to its gateway and upstream, never to another router, so
    the routers around it (tenants sharing an external network) stay in separate
    slices."""
    if network is None:
        return False
    if network.get("network_mode") != "physical":
        return True
    subnet = ipaddress.IPv4Network(f"{network['ipv4_network']}/{network['ipv4_prefix']}",
                                   strict=False)
    for route in routes:
        if route.get("ipv4_gateway") or not route.get("egress", True):
            continue
        prefix = ipaddress.IPv4Network(f"{route['ipv4_network']}/{route['ipv4_prefix']}",
                                       strict=False)
        if not prefix.subnet_of(subnet):
            return True
    return False


def _is_transit(index: ModelIndex, network: str) -> bool:
    routes = index.model["routes"]
    return is_transit(index.row("networks", network),
                      (routes[r] for r in index.kids("networks", network, "routes")))


def _routing_domain(index: ModelIndex, near: set[str]) -> tuple[set[str], set[str]]:
    """(route links, networks) routing from `near` can reach: the routers with a route on
    a near network, their networks, and on through every transit network to the routers
    beyond (the distributed router resolves a path across a chain of routers at the
    source, vna.routers)."""
    routes = index.model["routes"]
    links: set[str] = set()
    reached = set(near)
    frontier = list(near)
    while frontier:
        network = frontier.pop()
        for r in index.kids("networks", network, "routes"):
            link = routes[r]["route_link_uuid"]
            if link in links:
                continue
            links.add(link)
            for other in index.kids("route_links", link, "routes"):
                out = routes[other]["network_uuid"]
                if out not in reached:
                    reached.add(out)
                    if _is_transit(index, out):
                        frontier.append(out)
    return links, reached


def interest(index: ModelIndex, datapaths: set[str], watch: Watch) -> Interest:
    """L, S and the route links of `datapaths` (module docstring)."""
    out = Interest(datapaths=set(datapaths))
    local = out.local
    for dp in datapaths:
        local |= index.kids("datapaths", dp, "interfaces")
        local |= {index.model["active_interfaces"][a]["interface_uuid"]
                  for a in index.kids("datapaths", dp, "active_interfaces")}
    interfaces = index.model["interfaces"]
    local |= {i for i in watch.iface_ids if i in interfaces}
    for name in watch.port_names:
        local |= {i for i in index.by_port_name.get(name, ())
                  if interfaces[i].get("owner_datapath_uuid") in datapaths | {None}}
    near = out.near = _networks_of(index, local)
    out.route_links, routed = _routing_domain(index, near)
    isg = index.model["interface_security_groups"]
    groups = {isg[j]["security_group_uuid"] for i in local
              for j in index.kids("interfaces", i, "interface_security_groups")}
    for group in list(groups):
        row = index.row("security_groups", group)
        named = set(_GROUP_UUID.findall(row.get("rules") or "")) if row else set()
        groups |= {g for g in named if g in index.model["security_groups"]}
    out.groups = groups
    members = {isg[j]["interface_uuid"] for g in groups
               for j in index.kids("security_groups", g, "interface_security_groups")}
    out.networks = near | routed | _networks_of(index, members) | _networks_of(index, index.hosts)
    return out


def shared_keys(index: ModelIndex) -> set[Key]:
    """The rows every slice holds, whatever its interest: every datapath and security
    group, the host interfaces and the underlay networks (their leases' networks), and
    what hangs off them.  vnmgr keeps this part once for all nodes."""
    return _closure(index, Interest(networks=_networks_of(index, index.hosts)), set(), True)


def slice_keys(index: ModelIndex, it: Interest, shared: set[Key] | None = None) -> set[Key]:
    """Every (resource, uuid) of the slice (module docstring)."""
    if shared is None:
        shared = shared_keys(index)
    return shared | own_keys(index, it, shared)


def own_keys(index: ModelIndex, it: Interest, shared: set[Key]) -> set[Key]:
    """The slice's rows beyond `shared` (= shared_keys(index)): O(those rows)."""
    return _closure(index, it, shared, False)


def _closure(index: ModelIndex, it: Interest, base: set[Key], roots_everywhere: bool
             ) -> set[Key]:
    """The rows of `it` not in `base`, `base` being closed: the roots (networks, route
    links, interfaces; with roots_everywhere also the global rows and host interfaces),
    then every row with a reference to a kept row whose references are all kept."""
    model = index.model
    keep: dict[str, set[str]] = {}
    if roots_everywhere:
        keep["datapaths"] = set(model["datapaths"])
        keep["security_groups"] = set(model["security_groups"])
    keep["networks"] = {n for n in it.networks
                        if n in model["networks"] and ("networks", n) not in base}
    keep["route_links"] = {r for r in it.route_links
                           if r in model["route_links"] and ("route_links", r) not in base}
    ifaces = set(it.local) | (index.hosts if roots_everywhere else set())
    for network in keep["networks"]:
        ifaces |= {model["ip_leases"][lease]["interface_uuid"]
                   for lease in index.kids("networks", network, "ip_leases")}
        ifaces |= {model["datapath_networks"][d]["interface_uuid"]
                   for d in index.kids("networks", network, "datapath_networks")}
    for link in keep["route_links"]:
        ifaces |= {model["routes"][r]["interface_uuid"]
                   for r in index.kids("route_links", link, "routes")}
        ifaces |= {model["datapath_route_links"][d]["interface_uuid"]
                   for d in index.kids("route_links", link, "datapath_route_links")}
    keep["interfaces"] = {i for i in ifaces
                          if i in model["interfaces"] and ("interfaces", i) not in base}

    def has(parent: str, uuid: str) -> bool:
        return uuid in keep.get(parent, ()) or (parent, uuid) in base

    for resource in RESOURCES:
        if resource in keep:
            continue
        refs = REFS[resource]
        # Candidates: the children of every kept row (a child with all its parents in
        # base is in base already).
        found: set[str] = set()
        for _key, parent in refs:
            if parent not in GLOBAL_RESOURCES or roots_everywhere:
                for uuid in keep.get(parent, ()):
                    found |= index.kids(parent, uuid, resource)
        rows = model[resource]
        keep[resource] = {
            uuid for uuid in found
            if (resource, uuid) not in base
            and all(rows[uuid].get(k) is None or has(p, rows[uuid][k]) for k, p in refs)}
    return {(resource, uuid) for resource, uuids in keep.items() for uuid in uuids}


# Children whose presence makes their interface part of the slice (slice_keys).
NAMING_CHILDREN = (("ip_leases", "network_uuid", "networks"),
                    ("datapath_networks", "network_uuid", "networks"),
                    ("routes", "route_link_uuid", "route_links"),
                    ("datapath_route_links", "route_link_uuid", "route_links"))


def in_slice(index: ModelIndex, it: Interest, resource: str, uuid: str,
             member: Callable[[Key], bool]) -> bool:
    """Whether an existing row belongs to the slice of `it`, given `member` for the rows
    it references: the same rule as slice_keys, one row at a time."""
    model = index.model
    if uuid not in model[resource]:
        return False
    if resource in GLOBAL_RESOURCES:
        return True
    if resource == "networks":
        return uuid in it.networks
    if resource == "route_links":
        return uuid in it.route_links
    if resource == "interfaces":
        if uuid in it.local or uuid in index.hosts:
            return True
        wanted = {"networks": it.networks, "route_links": it.route_links}
        return any(model[child][c][key] in wanted[kind]
                   for child, key, kind in NAMING_CHILDREN
                   for c in index.kids("interfaces", uuid, child))
    row = model[resource][uuid]
    return all(row.get(k) is None or member((p, row[k])) for k, p in REFS[resource])


def slice_model(index: ModelIndex, keys: Iterable[Key]) -> dict[str, dict[str, Row]]:
    """The snapshot shape ({resource: {uuid: row}}, every resource present) of `keys`."""
    out: dict[str, dict[str, Row]] = {r: {} for r in RESOURCES}
    for resource, uuid in keys:
        out[resource][uuid] = index.model[resource][uuid]
    return out
