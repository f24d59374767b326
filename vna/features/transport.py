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

from dataclasses import dataclass

from vna import deps
from vna import route_link_wire as wire
from vna.actions import Action, Output, SetField
from vna.feature import Feature, OwnerKey
from vna.features.common import interface_id, local_vif, vif_addresses
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
KIND_INGRESS_LINK = 0x13  # obj route_links.id: mac2mac CLASSIFY on our dprl MAC
KIND_RX_IFACE = 0x60  # obj interfaces.id: mac2mac receive restore
KIND_RX_NETWORK = 0x61  # obj networks.id: mac2mac restore of routed sources
KIND_SEND = 0x71  # obj interfaces.id: OUTPUT toward a remote vif's datapath


def _mac2mac(view: View) -> bool:
    return view.binding.transport == "mac2mac"


# --- send ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Unreachable:
    """A remote vif's network this datapath has no way to send to, and why."""

    interface_uuid: str
    network_uuid: str
    datapath_uuid: str  # where the vif lives
    reason: str


def send_path(view: View, peer: str, network_uuid: str, ipv4s: list[str]
              ) -> tuple[tuple[Action, ...] | None, str]:
    """How a frame for these addresses on a virtual network reaches datapath `peer`:
    (actions, "") or (None, why not)."""
    binding = view.binding
    if binding.transport == "tunnel":
        peer_ip = view.underlay_ip(peer)
        if peer_ip is None:
            return None, f"tunnel: {peer} has no underlay address (no host interface " \
                         "with an IPv4 lease)"
        if binding.tunnel_ofport is None:
            return None, "tunnel: this datapath has no tunnel port"
        return (
            SetField("tunnel_id", int(view.network(network_uuid)["segment_id"])),
            SetField("tun_ipv4_dst", peer_ip),
            Output(binding.tunnel_ofport),
        ), ""
    mine, theirs = view.my_dpn(network_uuid), view.dpn(peer, network_uuid)
    port = view.underlay_port(network_uuid)
    if mine is not None and theirs is not None and port is not None:
        return _wire_send(mine["broadcast_mac_address"], theirs["broadcast_mac_address"], port), ""
    link = wire.link_toward(view, peer, network_uuid, ipv4s)
    link_port = wire.underlay_port(view, link) if link is not None else None
    if link is not None and link_port is not None:
        src, dst = wire.my_dprl(view, link), wire.dprl(view, peer, link)
        assert src is not None and dst is not None
        return _wire_send(wire.mac(src), wire.mac(dst), link_port), ""
    if link is not None or (mine is not None and theirs is not None):
        return None, "mac2mac: this datapath's underlay port is not attached"
    missing = [dp for dp, row in ((binding.datapath_uuid, mine), (peer, theirs)) if row is None]
    return None, (f"mac2mac: no datapath_network for {network_uuid} on {' and '.join(missing)}, "
                  f"and no route link with a datapath_route_link on both "
                  f"{binding.datapath_uuid} and {peer} delivers to it")


def _wire_send(src: str, dst: str, port: int) -> tuple[Action, ...]:
    return SetField("eth_src", src.lower()), SetField("eth_dst", dst.lower()), Output(port)


def _remote_networks(view: View, interface_uuid: str) -> dict[str, list[str]]:
    """network -> addresses of a remote vif on its virtual networks; {} unless remote."""
    if view.host_datapath(interface_uuid) is None or view.is_local(interface_uuid):
        return {}
    out: dict[str, list[str]] = {}
    for addr in sorted(vif_addresses(view, interface_uuid), key=lambda a: a.ipv4):
        out.setdefault(addr.network_uuid, []).append(addr.ipv4)
    return dict(sorted(out.items()))


def _send(view: View, interface_uuid: str) -> list[Flow]:
    peer = view.host_datapath(interface_uuid)
    flows = []
    for network, ipv4s in _remote_networks(view, interface_uuid).items():
        assert peer is not None
        actions, _ = send_path(view, peer, network, ipv4s)
        if actions is not None:
            obj = interface_id(view, interface_uuid)
            match = make_match({REG_OUTPORT: obj}, metadata=on_network(view.network_id(network)))
            flows.append(Flow(Table.OUTPUT, Prio.NORMAL, match, actions, kind=KIND_SEND,
                              obj_id=obj))
    return flows


def unreachable(view: View) -> list[Unreachable]:
    """Every (remote vif, network) this datapath cannot send to although one of its own
    vifs could address it (same network, or routed there by the routers of its
    networks): the vif answers ARP and is routed to like any other, so without this
    report the loss would be silent."""
    topo = topology(view)
    relevant: set[str] = set()
    for iface in view.hosted_on(view.binding.datapath_uuid):
        for addr in vif_addresses(view, iface):
            relevant.add(addr.network_uuid)
            for link in topo.attached.get(addr.network_uuid, []):
                relevant |= topo.networks_of_component(topo.component(link))
    # Only the interfaces on relevant networks: walking every interface of the model
    # took 190 ms at 10,000 (on the status thread, every 2 s after a change, holding
    # the GIL while events waited: the convergence tail).
    candidates = set().union(*(view.interfaces_on_network(n) for n in relevant))
    out = []
    for iface in sorted(candidates):
        peer = view.host_datapath(iface)
        for network, ipv4s in _remote_networks(view, iface).items():
            assert peer is not None
            if network not in relevant:
                continue
            actions, reason = send_path(view, peer, network, ipv4s)
            if actions is None:
                out.append(Unreachable(iface, network, peer, reason))
    return out


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


def _route_link_ingress(view: View, link_uuid: str) -> list[Flow]:
    """mac2mac frames sent to our dprl MAC of a router: the destination network is the
    one the router delivers ipv4_dst onto (per breakpoint prefix, longest first)."""
    if not _mac2mac(view):
        return []
    row, port = wire.my_dprl(view, link_uuid), wire.underlay_port(view, link_uuid)
    topo = topology(view)
    if row is None or port is None or link_uuid not in topo.routers:
        return []
    obj = int(view.row("route_links", link_uuid)["id"])
    base = {"in_port": port, "eth_dst": wire.mac(row), "eth_type": ETH_IPV4}
    flows = []
    entries = minimal_prefix_table(topo.breakpoints(topo.component(link_uuid)),
                                   lambda q: wire.delivers_on(view, link_uuid, q))
    for q, network in entries:
        value = ipv4_prefix_value(str(q.network_address), q.prefixlen)
        match = make_match(dict(base, **({"ipv4_dst": value} if value is not None else {})))
        priority = Prio.PREFIX_BASE + q.prefixlen
        if network is None:  # a hole in a shorter prefix: drop
            flows.append(Flow(Table.CLASSIFY, priority, match, kind=KIND_INGRESS_LINK,
                              obj_id=obj))
            continue
        flows.append(Flow(Table.CLASSIFY, priority, match,
                          metadata=classify_to(view.network_id(network), REMOTE),
                          goto=Table.RX_DST, kind=KIND_INGRESS_LINK, obj_id=obj))
    return flows


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


def route_link_flows(view: View, link_uuid: str) -> list[Flow]:
    return _route_link_ingress(view, link_uuid)


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
            out |= deps.all_of(view, "route_links", "route_link")
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
    return out | _route_link_dirty(change, view)


def _route_link_dirty(change: Change, view: View) -> set[OwnerKey]:
    """mac2mac over route links reads: our dprl rows (MAC, port) for the receive flows of
    their router; both ends' dprl rows and the router topology for the send path of each
    vif on the networks of the routers."""
    if not _mac2mac(view):
        return set()
    mine = view.binding.datapath_uuid
    topo = topology(view)

    def carried(link: str) -> set[OwnerKey]:  # vifs whose send path may use `link`
        router = topo.routers.get(link)
        nets = router.ports if router is not None else {}
        return set().union(*(deps.interfaces_on(view, n) for n in nets))

    out: set[OwnerKey] = set()
    if change.resource == "datapath_route_links":
        for row in deps.rows(change):
            link, dp = row["route_link_uuid"], row["datapath_uuid"]
            if dp == mine:
                out |= {("route_link", link)} | carried(link)
            else:
                out |= carried(link) & deps.interfaces(view.hosted_on(dp))
    changed = deps.changed_interfaces(change)
    for row in view.model.get("datapath_route_links", {}).values():
        if row["datapath_uuid"] == mine and row.get("interface_uuid") in changed:
            out |= {("route_link", row["route_link_uuid"])} | carried(row["route_link_uuid"])
    if wire.has_dprl(view):
        for link in deps.router_links(view, change):
            component = topo.component(link) & topo.routers.keys()
            out |= {("route_link", u) for u in component | {link}}
            for net in topo.networks_of_component(component):
                out |= deps.interfaces_on(view, net)
    return out


FEATURE = Feature(
    name="transport",
    kinds=frozenset({KIND_INGRESS, KIND_INGRESS_LINK, KIND_RX_IFACE, KIND_RX_NETWORK,
                     KIND_SEND}),
    owners={"interface": interface_flows, "network": network_flows,
            "route_link": route_link_flows},
    dirty=dirty,
)
