"""The transports between datapaths, both halves: how a frame for a remote vif is sent
(OUTPUT) and how one from the underlay is received (CLASSIFY, mac2mac RX_DST/RX_SRC).

* tunnel: one flow-based tunnel port.  Send: tunnel_id := segment of the network,
  tun_ipv4_dst := peer underlay IP, output the tunnel port.  Receive: CLASSIFY on
  (tunnel port, tunnel_id) -> network|REMOTE -> L2_LOOKUP (routing already happened at
  the source, frames carry their final MACs).
* mac2mac: no encapsulation; the datapath_network MACs identify (datapath, network) on
  the underlay segment.  Send: eth_src/eth_dst := our/their datapath_network MACs, output
  the underlay port.  Receive: CLASSIFY on (underlay port, eth_dst=our dpn MAC) ->
  RX_DST/RX_SRC rebuild the MACs from the IP header: the destination is always a local
  vif, the source a known interface of the network or, for routed packets, the router
  port on this network that leads back toward the source.  Only IPv4 crosses (ARP is
  answered locally).
"""

from __future__ import annotations

from vna import deps
from vna.actions import Action, Output, SetField
from vna.feature import Feature, OwnerKey
from vna.features.common import interface_id, local_vif, mac_on_networks, vif_addresses
from vna.flows import Flow, ipv4_prefix_value, make_match
from vna.modelstore import Change
from vna.pipeline import (
    ETH_IPV4,
    REG_OUTPORT,
    REMOTE,
    Prio,
    Table,
    classify_to,
    on_network,
)
from vna.routers import Prefix, minimal_prefix_table, topology
from vna.view import View

KIND_INGRESS = 0x11  # obj networks.id: CLASSIFY of the underlay
KIND_RX_IFACE = 0x60  # obj interfaces.id: mac2mac receive restore
KIND_RX_NETWORK = 0x61  # obj networks.id: mac2mac restore of routed sources
KIND_SEND = 0x71  # obj interfaces.id: OUTPUT toward a remote vif's datapath


def _mac2mac(view: View) -> bool:
    return view.binding.transport == "mac2mac"


# --- send ---------------------------------------------------------------------------
def send_actions(view: View, peer: str, network_uuid: str) -> tuple[Action, ...] | None:
    """How a frame on a virtual network reaches datapath `peer`; None if it cannot."""
    binding = view.binding
    if binding.transport == "tunnel":
        peer_ip = view.underlay_ip(peer)
        if peer_ip is None or binding.tunnel_ofport is None:
            return None
        return (
            SetField("tunnel_id", int(view.network(network_uuid)["segment_id"])),
            SetField("tun_ipv4_dst", peer_ip),
            Output(binding.tunnel_ofport),
        )
    mine, theirs = view.my_dpn(network_uuid), view.dpn(peer, network_uuid)
    port = view.underlay_port(network_uuid)
    if mine is None or theirs is None or port is None:
        return None
    return (
        SetField("eth_src", mine["broadcast_mac_address"].lower()),
        SetField("eth_dst", theirs["broadcast_mac_address"].lower()),
        Output(port),
    )


def _send(view: View, interface_uuid: str) -> list[Flow]:
    peer = view.host_datapath(interface_uuid)
    if peer is None or view.is_local(interface_uuid):
        return []
    obj = interface_id(view, interface_uuid)
    flows = []
    for network in sorted({n for n, _mac in mac_on_networks(vif_addresses(view, interface_uuid))}):
        actions = send_actions(view, peer, network)
        if actions is not None:
            match = make_match({REG_OUTPORT: obj}, metadata=on_network(view.network_id(network)))
            flows.append(Flow(Table.OUTPUT, Prio.NORMAL, match, actions, kind=KIND_SEND,
                              obj_id=obj))
    return flows


# --- receive ------------------------------------------------------------------------
def _underlay_ingress(view: View, network_uuid: str) -> Flow | None:
    nid = view.network_id(network_uuid)
    binding = view.binding
    if binding.transport == "tunnel":
        if binding.tunnel_ofport is None:
            return None
        segment = int(view.network(network_uuid)["segment_id"])
        match = make_match(in_port=binding.tunnel_ofport, tunnel_id=segment)
        goto = Table.L2_LOOKUP
    else:
        dpn = view.my_dpn(network_uuid)
        port = view.underlay_port(network_uuid)
        if dpn is None or port is None:
            return None
        match = make_match(in_port=port, eth_dst=dpn["broadcast_mac_address"].lower())
        goto = Table.RX_DST
    return Flow(
        Table.CLASSIFY,
        Prio.NORMAL,
        match,
        metadata=classify_to(nid, REMOTE),
        goto=goto,
        kind=KIND_INGRESS,
        obj_id=nid,
    )


def _rx_interface(view: View, interface_uuid: str) -> list[Flow]:
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
            _restore(Table.RX_SRC, Prio.EXACT, on_net, "ipv4_src", addr.ipv4, "eth_src",
                     addr.mac, Table.L2_LOOKUP, KIND_RX_IFACE, obj)
        )
        if local is not None and local.macs.get(addr.mac, ("",))[0] == addr.network_uuid:
            flows.append(
                _restore(Table.RX_DST, Prio.NORMAL, on_net, "ipv4_dst", addr.ipv4, "eth_dst",
                         addr.mac, Table.RX_SRC, KIND_RX_IFACE, obj)
            )
    return flows


def _rx_routed_sources(view: View, network_uuid: str) -> list[Flow]:
    """Routed sources: (network, source prefix) -> MAC of the router port toward it."""
    if not _mac2mac(view):
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
        _restore(Table.RX_SRC, Prio.PREFIX_BASE + q.prefixlen, on_net, "ipv4_src",
                 ipv4_prefix_value(str(q.network_address), q.prefixlen), "eth_src", mac,
                 Table.L2_LOOKUP, KIND_RX_NETWORK, nid)
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
    kind: int,
    obj: int,
) -> Flow:
    match = dict(base, eth_type=ETH_IPV4)
    if ip_value is not None:
        match[ip_field] = ip_value
    if mac is None:  # an explicit hole in a shorter prefix: drop
        return Flow(table, priority, make_match(match), kind=kind, obj_id=obj)
    return Flow(table, priority, make_match(match), (SetField(mac_field, mac),), goto=goto,
                kind=kind, obj_id=obj)


# --- owners -------------------------------------------------------------------------
def interface_flows(view: View, interface_uuid: str) -> list[Flow]:
    return _send(view, interface_uuid) + _rx_interface(view, interface_uuid)


def network_flows(view: View, network_uuid: str) -> list[Flow]:
    if view.network(network_uuid) is None or not view.is_virtual(network_uuid):
        return []
    ingress = _underlay_ingress(view, network_uuid)
    return ([ingress] if ingress else []) + _rx_routed_sources(view, network_uuid)


def dirty(change: Change, view: View) -> set[OwnerKey]:
    """Reads: a vif's row, leases and locality; each network's segment and datapath
    networks (MACs, host port); the underlay addresses and ports of host interfaces; the
    router topology of the network (routed sources)."""
    out = deps.own_interface(change, view)
    mine = view.binding.datapath_uuid
    datapaths = deps.host_interface_datapaths(change)
    for iface in deps.changed_interfaces(change):
        datapaths |= deps.hosted_host_interfaces(view, iface)
        for using in deps.networks_using(view, iface):  # a datapath_network's host port
            out |= {using} | deps.interfaces_on(view, using[1])
    for dp in datapaths:
        if dp == mine:  # our underlay address and fallback underlay port
            out |= deps.all_of(view, "interfaces", "interface")
            out |= deps.all_of(view, "networks", "network")
        else:
            out |= deps.interfaces(view.hosted_on(dp))
    if change.resource == "networks":
        out |= {("network", change.uuid)}
    elif change.resource == "datapath_networks":
        for row in deps.rows(change):
            network = row["network_uuid"]
            out |= {("network", network)}
            on_network = view.interfaces_on_network(network)
            if row["datapath_uuid"] == mine:
                out |= deps.interfaces(on_network)
            else:
                out |= deps.interfaces(set(view.hosted_on(row["datapath_uuid"])) & on_network)
    for link in deps.router_links(view, change):
        out |= deps.networks_of_component(view, link)
    return out


FEATURE = Feature(
    name="transport",
    kinds=frozenset({KIND_INGRESS, KIND_RX_IFACE, KIND_RX_NETWORK, KIND_SEND}),
    owners={"interface": interface_flows, "network": network_flows},
    dirty=dirty,
)
