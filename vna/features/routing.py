"""ROUTE and ARP_RESOLVE: the distributed router, applied on the source datapath.

A packet a vif sends to a router port's MAC is routed here in one table pass, even
across a chain of routers (vna.routers resolves the path); ARP resolution gives it the
destination's MAC from the model (no ARP on the wire), then L2_LOOKUP sends it straight
to the datapath hosting the destination.  The router's own addresses are answered by
vna.features.gateway.
"""

from __future__ import annotations

from vna import deps
from vna.actions import Action, DecTtl, SetField
from vna.feature import Feature, OwnerKey
from vna.features.common import interface_id, vif_addresses
from vna.flows import Flow, ipv4_prefix_value, make_match
from vna.modelstore import Change
from vna.pipeline import ETH_IPV4, NETWORK_MASK, Prio, Table, on_network
from vna.routers import Path, Prefix, Router, Topology, minimal_prefix_table, topology
from vna.view import View

KIND_ROUTE = 0x50  # obj route_links.id
KIND_ARP_RESOLVE = 0x51  # obj interfaces.id


def route_link_flows(view: View, route_link_uuid: str) -> list[Flow]:
    """A router's route entries in ROUTE, for each of its ingress ports."""
    topo = topology(view)
    router = topo.routers.get(route_link_uuid)
    if router is None:
        return []
    prefixes = topo.breakpoints(topo.component(route_link_uuid))
    flows = []
    for port in sorted(router.ports.values(), key=lambda p: view.network_id(p.network_uuid)):
        if not port.ingress:
            continue
        table = minimal_prefix_table(prefixes, lambda q: _outcome(topo, router, q))
        for q, path in table:
            flows.append(_route_flow(view, router, port.network_uuid, port.mac, q, path))
    return flows


def _outcome(topo: Topology, router: Router, q: Prefix) -> Path | None:
    return topo.resolve(router, q) if router.lpm(q) is not None else None


def _route_flow(
    view: View, router: Router, network: str, mac: str, q: Prefix, path: Path | None
) -> Flow:
    match = {"metadata": on_network(view.network_id(network)), "eth_dst": mac}
    match["eth_type"] = ETH_IPV4
    dst = ipv4_prefix_value(str(q.network_address), q.prefixlen)
    if dst is not None:
        match["ipv4_dst"] = dst
    common = {"kind": KIND_ROUTE, "obj_id": router.id}
    priority = Prio.PREFIX_BASE + q.prefixlen
    if path is None:
        return Flow(Table.ROUTE, priority, make_match(match), **common)
    actions: tuple[Action, ...] = (SetField("eth_src", path.src_mac),)
    actions += (DecTtl(),) * path.hops
    return Flow(
        Table.ROUTE,
        priority,
        make_match(match),
        actions,
        goto=Table.ARP_RESOLVE,
        metadata=(view.network_id(path.network_uuid), NETWORK_MASK),
        **common,
    )


def interface_flows(view: View, interface_uuid: str) -> list[Flow]:
    """ARP_RESOLVE entries: routed packets get their destination MAC from the model."""
    addresses = vif_addresses(view, interface_uuid)
    if not addresses:
        return []
    obj = interface_id(view, interface_uuid)
    flows = []
    for addr in sorted(addresses, key=lambda a: (a.network_uuid, a.ipv4)):
        match = make_match(
            metadata=on_network(view.network_id(addr.network_uuid)),
            eth_type=ETH_IPV4,
            ipv4_dst=addr.ipv4,
        )
        flows.append(
            Flow(
                Table.ARP_RESOLVE,
                Prio.NORMAL,
                match,
                (SetField("eth_dst", addr.mac),),
                goto=Table.SNAT,
                kind=KIND_ARP_RESOLVE,
                obj_id=obj,
            )
        )
    return flows


def dirty(change: Change, view: View) -> set[OwnerKey]:
    return deps.routers(change, view) | deps.own_interface(change, view)


FEATURE = Feature(
    name="routing",
    kinds=frozenset({KIND_ROUTE, KIND_ARP_RESOLVE}),
    owners={"route_link": route_link_flows, "interface": interface_flows},
    dirty=dirty,
)
