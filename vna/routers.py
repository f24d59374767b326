"""Router topology and path resolution for the distributed router.

A router is a route_link.  Its ports are the simulated, enable_routing interfaces its
routes name; a port's MAC/IP is the gateway on that port's network.  Routes are
(prefix -> out network); `ingress` lets a network's traffic enter the router through
that port, `egress` lets a route send traffic out.

A port on a *physical* network (OpenVNet's router_p2v/wanedge) must have an owner
datapath, the gateway: only it answers for the port on the segment and only it sends
onto the segment through the port, so everything routed onto that network is routed on
the gateway (the other datapaths forward it there unrouted, vna.features.edge_router).
A route may name a next hop (`ipv4_gateway`) on its network: a path using it ends there,
with that next hop.

Paths are resolved here, in the controller, so the switch routes a packet across a
chain of routers in one table pass.  Decisions depend only on "which prefixes contain
the destination", so paths are computed per *breakpoint prefix*: every route prefix
and attached subnet of the routers' connected component.  For a destination in Q
(and in no more specific breakpoint) a prefix X contains it iff X contains Q, so one
resolution per Q is exact.
"""

from __future__ import annotations

import ipaddress
import weakref
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from vna.pipeline import MAX_ROUTER_HOPS
from vna.view import View
from vnet.slice import is_transit

Prefix = ipaddress.IPv4Network
T = TypeVar("T")


@dataclass(frozen=True)
class Port:
    route_link_uuid: str
    interface_uuid: str
    network_uuid: str
    mac: str
    ipv4: str | None
    ingress: bool
    # A port on a physical network: its owner datapath (the gateway); None when virtual.
    gateway_datapath: str | None = None


@dataclass(frozen=True)
class RouteEntry:
    route_id: int
    prefix: Prefix
    out_network: str
    next_hop: str | None = None  # the route's ipv4_gateway


@dataclass
class Router:
    uuid: str
    id: int
    ports: dict[str, Port] = field(default_factory=dict)  # network uuid -> port
    routes: list[RouteEntry] = field(default_factory=list)  # egress routes only

    def lpm(self, q: Prefix) -> RouteEntry | None:
        best = None
        for route in self.routes:
            if q.subnet_of(route.prefix) and (
                best is None
                or (route.prefix.prefixlen, -route.route_id)
                > (best.prefix.prefixlen, -best.route_id)
            ):
                best = route
        return best


@dataclass(frozen=True)
class Step:
    """One router a routed packet crosses: the router and the network it sends onto."""

    route_link_uuid: str
    out_network: str
    out_mac: str  # the router's port MAC on out_network


@dataclass(frozen=True)
class Path:
    network_uuid: str  # where the packet is delivered
    src_mac: str  # MAC of the last router's port on that network
    hops: int  # routers crossed = TTL decrements
    steps: tuple[Step, ...] = ()  # the routers crossed, in order (len == hops)
    next_hop: str | None = None  # a route's ipv4_gateway; None: the destination itself
    exit_port: Port | None = None  # the last router's port onto network_uuid

    @property
    def gateway_datapath(self) -> str | None:
        """The datapath that must route this packet: the owner of a physical exit port."""
        return self.exit_port.gateway_datapath if self.exit_port is not None else None


def prefix(network: str, plen: int) -> Prefix:
    return ipaddress.IPv4Network(f"{network}/{plen}", strict=False)


# Rows a Topology is built from: route links and routes, and the rows of the router
# interfaces and networks they name (see Topology.unaffected_by).
_ROUTER_RESOURCES = ("route_links", "routes")
_INTERFACE_RESOURCES = ("mac_leases", "ip_leases")


class Topology:
    def __init__(self, view: View, prior: Topology | None = None) -> None:
        """The routers of `view`; `prior` (a topology of an earlier view that
        `unaffected_by` the changes since) lends its routers instead of rebuilding them:
        building costs O(networks the routers join) per event (7 ms at 10k interfaces
        in bench/, 10x at 100k)."""
        # Weak: the view holds its topology (view.cache), and a strong reference back
        # would make every view a cycle that only the cyclic collector frees, in passes
        # over all of each event's garbage: up to 6 s at 100,000 interfaces
        # (bench.scaled), against 150 ms without the cycle.
        self.view: View = weakref.proxy(view)
        if prior is not None:
            self.routers, self.attached = prior.routers, prior.attached
            self._component, self._rows_used = prior._component, prior._rows_used
            return
        self.routers: dict[str, Router] = {}
        self.attached: dict[str, list[str]] = defaultdict(list)  # network -> routers
        for link_uuid in view.uuids("route_links"):
            router = self._build(link_uuid)
            self.routers[link_uuid] = router
            for net in router.ports:
                self.attached[net].append(link_uuid)
        for links in self.attached.values():
            links.sort(key=lambda u: self.routers[u].id)
        self._component = self._components()
        interfaces = {r["interface_uuid"] for r in view.model.get("routes", {}).values()}
        networks = {r["network_uuid"] for r in view.model.get("routes", {}).values()}
        networks.update(lease["network_uuid"] for uuid in interfaces
                        for lease in view.ip_leases_of(uuid))
        self._rows_used = (frozenset(interfaces), frozenset(networks))

    def unaffected_by(self, changes: Mapping[str, list[Any]]) -> bool:
        """Whether changes (vna.modelstore.Change by resource) leave every router as it
        is: no route link or route changed, nor a router interface, its leases, or a
        network a route or a router interface names."""
        if any(changes.get(resource) for resource in _ROUTER_RESOURCES):
            return False
        interfaces, networks = self._rows_used
        if any(c.uuid in networks for c in changes.get("networks", ())):
            return False
        if any(c.uuid in interfaces for c in changes.get("interfaces", ())):
            return False
        return not any(row is not None and row.get("interface_uuid") in interfaces
                       for resource in _INTERFACE_RESOURCES
                       for c in changes.get(resource, ()) for row in (c.old, c.new))

    def _build(self, link_uuid: str) -> Router:
        view = self.view
        router = Router(link_uuid, int(view.row("route_links", link_uuid)["id"]))
        routes = sorted(view.routes_of_link(link_uuid), key=lambda r: r["id"])
        for route in routes:
            net = route["network_uuid"]
            iface = view.interface(route["interface_uuid"])
            mac = view.mac_of(route["interface_uuid"])
            owner = iface.get("owner_datapath_uuid") if iface is not None else None
            if (
                iface is None
                or iface.get("mode") != "simulated"
                or not iface.get("enable_routing")
                or mac is None
                or view.network(net) is None
                or not (view.is_virtual(net) or owner)  # a physical port needs a gateway
            ):
                continue
            old = router.ports.get(net)
            ingress = bool(route.get("ingress", True)) or (old is not None and old.ingress)
            if old is None or old.interface_uuid == iface["uuid"]:
                ip = next(
                    (a.ipv4 for a in view.addresses_of(iface["uuid"]) if a.network_uuid == net),
                    None,
                )
                gateway = None if view.is_virtual(net) else owner
                router.ports[net] = Port(link_uuid, iface["uuid"], net, mac, ip, ingress,
                                         gateway)
        for route in routes:
            if route.get("egress", True) and route["network_uuid"] in router.ports:
                p = prefix(route["ipv4_network"], int(route["ipv4_prefix"]))
                router.routes.append(RouteEntry(int(route["id"]), p, route["network_uuid"],
                                                route.get("ipv4_gateway") or None))
        return router

    def _components(self) -> dict[str, frozenset[str]]:
        # Routers sharing a (transit) network can hand packets to each other.
        parent = {u: u for u in self.routers}

        def find(u: str) -> str:
            while parent[u] != u:
                parent[u] = parent[parent[u]]
                u = parent[u]
            return u

        for network, links in self.attached.items():
            # Only across a transit network can a path go on to the next router
            # (vnet.slice.is_transit): tenants' routers that share an external network
            # with next hops upstream are separate components, and separate slices.
            if not is_transit(self.view.network(network), self.view.routes_on_network(network)):
                continue
            for other in links[1:]:
                parent[find(other)] = find(links[0])
        groups: dict[str, set[str]] = defaultdict(set)
        for u in self.routers:
            groups[find(u)].add(u)
        return {u: frozenset(groups[find(u)]) for u in self.routers}

    # --- queries --------------------------------------------------------------------
    def component(self, link_uuid: str) -> frozenset[str]:
        return self._component.get(link_uuid, frozenset())

    def networks_of_component(self, links: frozenset[str]) -> set[str]:
        return {net for u in links for net in self.routers[u].ports}

    def breakpoints(self, links: frozenset[str]) -> list[Prefix]:
        found: set[Prefix] = set()
        for u in links:
            found.update(r.prefix for r in self.routers[u].routes)
        for net in self.networks_of_component(links):
            found.add(self.subnet(net))
        return sorted(found, key=lambda p: (p.prefixlen, int(p.network_address)))

    def subnet(self, network_uuid: str) -> Prefix:
        net = self.view.network(network_uuid)
        return prefix(net["ipv4_network"], int(net["ipv4_prefix"]))

    def next_router(self, network_uuid: str, q: Prefix, exclude: str | None) -> Router | None:
        """The router on a network that takes a packet for q: longest route, then
        lowest id.  Routes pointing back onto the same network do not count."""
        best: tuple[tuple[int, int], Router] | None = None
        for u in self.attached.get(network_uuid, []):
            router = self.routers[u]
            if u == exclude or not router.ports[network_uuid].ingress:
                continue
            route = router.lpm(q)
            if route is None or route.out_network == network_uuid:
                continue
            rank = (route.prefix.prefixlen, -router.id)
            if best is None or rank > best[0]:
                best = (rank, router)
        return best[1] if best else None

    def resolve(self, router: Router, q: Prefix) -> Path | None:
        """Where a packet for q that entered `router` ends up; None = drop."""
        seen: set[str] = set()
        hops = 0
        steps: list[Step] = []
        while True:
            route = router.lpm(q)
            hops += 1
            if route is None or hops > MAX_ROUTER_HOPS:
                return None
            out = route.out_network
            port = router.ports[out]
            steps.append(Step(router.uuid, out, port.mac))
            if q.subnet_of(self.subnet(out)):
                return Path(out, port.mac, hops, tuple(steps), exit_port=port)
            if route.next_hop is not None:  # handed to the route's gateway on `out`
                return Path(out, port.mac, hops, tuple(steps), route.next_hop, port)
            seen.add(router.uuid)
            nxt = self.next_router(out, q, exclude=router.uuid)
            if nxt is None:
                # No router goes further: deliver on `out`, ARP_RESOLVE decides.
                return Path(out, port.mac, hops, tuple(steps), exit_port=port)
            if nxt.uuid in seen:
                return None
            router = nxt


def topology(view: View) -> Topology:
    """The view's routers, computed once per view; a view derived from one whose
    topology the event left alone (View.updated keeps it as `routers_prior`) reuses it."""
    found = view.cache.get("routers")
    if found is None:
        prior, changes = view.cache.pop("routers_prior", (None, None))
        if prior is not None and not prior.unaffected_by(changes):
            prior = None
        found = view.cache["routers"] = Topology(view, prior)
    return found


def minimal_prefix_table(
    prefixes: list[Prefix], outcome_of: Callable[[Prefix], T | None]
) -> list[tuple[Prefix, T | None]]:
    """The fewest longest-prefix-match entries implementing outcome_of over prefixes.

    None means "drop", which is also what every table using this does on a miss, so an
    entry is only emitted where its outcome differs from what the longest shorter
    emitted prefix (or the miss) would do.  prefixes must be sorted shortest first.
    """
    emitted: list[tuple[Prefix, T | None]] = []
    for q in prefixes:
        outcome = outcome_of(q)
        inherited = None
        for p, value in reversed(emitted):
            if q.subnet_of(p):
                inherited = value
                break
        if outcome != inherited:
            emitted.append((q, outcome))
    return emitted
