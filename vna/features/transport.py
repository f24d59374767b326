"""RX_DST / RX_SRC: the receive side of the mac2mac transport.

mac2mac rewrites both MACs to datapath_network MACs on the underlay, so the receiver
rebuilds them from the IP header: the destination is always a local vif, the source a
known interface of the network or, for routed packets, the router port on this network
that leads back toward the source.  Only IPv4 crosses (ARP is answered locally).
"""

from __future__ import annotations

from vna.features.common import interface_id, local_vif, vif_addresses
from vna.flows import Flow, ipv4_prefix_value, make_match
from vna.pipeline import ETH_IPV4, Kind, Prio, Table, on_network
from vna.routers import Prefix, minimal_prefix_table, topology
from vna.view import View


def _mac2mac(view: View) -> bool:
    return view.binding.transport == "mac2mac"


def interface_flows(view: View, interface_uuid: str) -> list[Flow]:
    if not _mac2mac(view):
        return []
    addresses = vif_addresses(view, interface_uuid)
    if not addresses:
        return []
    obj = interface_id(view, interface_uuid)
    local = local_vif(view, interface_uuid)
    flows = []
    for addr in sorted(addresses, key=lambda a: (a.network_uuid, a.ipv4)):
        on_net = {"metadata": on_network(view.network_id(addr.network_uuid))}
        flows.append(
            _restore(
                Table.RX_SRC,
                Prio.EXACT,
                on_net,
                "ipv4_src",
                addr.ipv4,
                "eth_src",
                addr.mac,
                Table.L2_LOOKUP,
                Kind.RX_IFACE,
                obj,
            )
        )
        if local is not None and local.macs.get(addr.mac, ("",))[0] == addr.network_uuid:
            flows.append(
                _restore(
                    Table.RX_DST,
                    Prio.NORMAL,
                    on_net,
                    "ipv4_dst",
                    addr.ipv4,
                    "eth_dst",
                    addr.mac,
                    Table.RX_SRC,
                    Kind.RX_IFACE,
                    obj,
                )
            )
    return flows


def network_flows(view: View, network_uuid: str) -> list[Flow]:
    """Routed sources: (network, source prefix) -> MAC of the router port toward it."""
    if not _mac2mac(view) or view.network(network_uuid) is None:
        return []
    if not view.is_virtual(network_uuid):
        return []
    topo = topology(view)
    links = frozenset().union(*(topo.component(u) for u in topo.attached.get(network_uuid, [])))
    if not links:
        return []
    own = topo.subnet(network_uuid)
    prefixes = [q for q in topo.breakpoints(links) if not q.subnet_of(own)]

    def toward(q: Prefix) -> str | None:
        router = topo.next_router(network_uuid, q, exclude=None)
        return router.ports[network_uuid].mac if router else None

    nid = view.network_id(network_uuid)
    on_net = {"metadata": on_network(nid)}
    return [
        _restore(
            Table.RX_SRC,
            Prio.PREFIX_BASE + q.prefixlen,
            on_net,
            "ipv4_src",
            ipv4_prefix_value(str(q.network_address), q.prefixlen),
            "eth_src",
            mac,
            Table.L2_LOOKUP,
            Kind.RX_NETWORK,
            nid,
        )
        for q, mac in minimal_prefix_table(prefixes, toward)
    ]


def _restore(
    table: Table,
    priority: int,
    base: dict[str, object],
    ip_field: str,
    ip_value: object,
    mac_field: str,
    mac: str | None,
    goto: Table,
    kind: Kind,
    obj: int,
) -> Flow:
    match = dict(base, eth_type=ETH_IPV4)
    if ip_value is not None:
        match[ip_field] = ip_value
    if mac is None:  # an explicit hole in a shorter prefix: drop
        return Flow(table, priority, make_match(match), kind=kind, obj_id=obj)
    return Flow(
        table,
        priority,
        make_match(match),
        (("set_field", mac_field, mac),),
        goto=goto,
        kind=kind,
        obj_id=obj,
    )
