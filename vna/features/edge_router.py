"""Router ports on physical networks (OpenVNet's router_p2v and wanedge): the gateway.

A router port on a physical network has an owner datapath, the *gateway* (vna.routers).
Only the gateway answers ARP for the port's addresses on the segment, receives what the
segment sends to the port's MAC, and routes onto the segment; so the port's MAC appears on
the physical L2 at one place and connection state (NAT, vna.features.nat) lives at one
place.  The other datapaths forward a packet whose route leaves through such a port to
the gateway as the VM sent it (vna.features.routing writes the exit port into reg15), and
the gateway routes it like one of its own VMs' packets.

Flows, by owner:

- a physical network with a port of ours (the gateway): CLASSIFY of the segment's ARP
  (-> ARP) and of IPv4 to the port's MAC (-> DNAT, then ROUTE); the ARP responder for the
  port's addresses and a punt of ARP replies to it (MAC binding); ARP_RESOLVE by next hop
  (reg12): the model's addresses on the network, then the learned bindings
  (vna.neighbors), and a punt for the rest, which makes the agent ask by ARP;
- a router with a port owned elsewhere: OUTPUT of reg15 = that port toward its gateway
  (the virtual network's transport); a router with a port owned here: CLASSIFY of what
  the other datapaths forward (tunnel: the router port MAC as eth_dst; mac2mac: our
  datapath_network MAC and a destination routed through our port, eth_dst restored).
"""

from __future__ import annotations

import ipaddress
import logging

from os_ken.lib.packet import arp, ethernet, ipv4, packet

from vna import deps
from vna.actions import Controller, Meter, SetField
from vna.feature import Feature, OwnerKey
from vna.features.arp import responder
from vna.features.common import interface_id
from vna.features.physical import port_owner
from vna.features.transport import send_path
from vna.flows import Flow, cookie_parts, ipv4_prefix_value, make_match
from vna.meters import ICMP_ERROR_METER_ID
from vna.modelstore import Change
from vna.pipeline import (
    ARP_REPLY,
    ARP_REQUEST,
    ETH_ARP,
    ETH_IPV4,
    PHYSICAL,
    REG_NEXTHOP,
    REG_OUTPORT,
    REMOTE,
    Prio,
    Table,
    classify_to,
    on_network,
)
from vna.punt import PacketIn, PacketOut
from vna.routers import Port, Prefix, Topology, minimal_prefix_table, topology
from vna.view import View

log = logging.getLogger("vna.edge_router")

KIND_SEGMENT_IN = 0x14  # obj networks.id: CLASSIFY from the segment (gateway)
KIND_FORWARDED_IN = 0x15  # obj route_links.id: CLASSIFY of packets forwarded to us
KIND_PORT_ARP = 0x33  # obj networks.id: ARP answers for the port; replies to it punted
KIND_NEXT_HOP = 0x55  # obj networks.id: ARP_RESOLVE by next hop; misses punted
KIND_TO_GATEWAY = 0x73  # obj route_links.id: OUTPUT of reg15 = exit port -> its gateway

# Packets of the segment and of routed misses share the datapath-wide ICMP error meter.
PUNT = (Meter(ICMP_ERROR_METER_ID), Controller())


def gateway_ports(view: View, network_uuid: str) -> list[Port]:
    """The router ports on a physical network this datapath is the gateway of."""
    me = view.binding.datapath_uuid
    ports = [router.ports[network_uuid] for router in topology(view).routers.values()
             if network_uuid in router.ports]
    return sorted({p for p in ports if p.gateway_datapath == me}, key=lambda p: p.interface_uuid)


def _segment_port(view: View, network_uuid: str) -> int | None:
    """Our port on the physical segment, if we own its classification."""
    port = view.physical_port(network_uuid)
    if port is None or port_owner(view, network_uuid) != network_uuid:
        return None
    return port


# --- owner: network -----------------------------------------------------------------
def network_flows(view: View, network_uuid: str) -> list[Flow]:
    if view.network(network_uuid) is None or view.is_virtual(network_uuid):
        return []
    ports = gateway_ports(view, network_uuid)
    if not ports:
        return []
    nid = view.network_id(network_uuid)
    flows = []
    segment = _segment_port(view, network_uuid)
    if segment is not None:
        from_segment = classify_to(nid, PHYSICAL)
        flows.append(Flow(Table.CLASSIFY, Prio.NORMAL, make_match(in_port=segment,
                                                                  eth_type=ETH_ARP),
                          metadata=from_segment, goto=Table.ARP, kind=KIND_SEGMENT_IN,
                          obj_id=nid))
        flows += [Flow(Table.CLASSIFY, Prio.NORMAL,
                       make_match(in_port=segment, eth_dst=mac, eth_type=ETH_IPV4),
                       metadata=from_segment, goto=Table.DNAT, kind=KIND_SEGMENT_IN,
                       obj_id=nid)
                  for mac in sorted({p.mac for p in ports})]
    own: set[str] = set()
    for port in ports:
        for addr in view.addresses_of(port.interface_uuid):
            if addr.network_uuid != network_uuid:
                continue
            own.add(addr.ipv4)
            flows.append(responder(view, addr, nid, KIND_PORT_ARP))
            flows.append(Flow(Table.ARP, Prio.NORMAL,
                              make_match(metadata=on_network(nid), eth_type=ETH_ARP,
                                         arp_op=ARP_REPLY, arp_tpa=addr.ipv4),
                              PUNT, kind=KIND_PORT_ARP, obj_id=nid))
    return flows + _next_hops(view, network_uuid, nid, own)


def _next_hops(view: View, network_uuid: str, nid: int, own: set[str]) -> list[Flow]:
    """ARP_RESOLVE by next hop (reg12): the model's addresses first (a VM or host on the
    segment the model knows), then what ARP taught us; anything else asks (punt)."""
    known: dict[str, str] = {
        ipv4: mac for (network, ipv4), mac in view.binding.neighbors.items()
        if network == network_uuid}
    for iface in sorted(view.interfaces_on_network(network_uuid)):
        for addr in view.addresses_of(iface):
            if addr.network_uuid == network_uuid and addr.ipv4 not in own:
                known[addr.ipv4] = addr.mac
    base = {"metadata": on_network(nid), "eth_type": ETH_IPV4}
    flows = [Flow(Table.ARP_RESOLVE, Prio.NORMAL,
                  make_match(base, **{REG_NEXTHOP: int(ipaddress.IPv4Address(ipv4))}),
                  (SetField("eth_dst", mac),), goto=Table.SNAT, kind=KIND_NEXT_HOP, obj_id=nid)
             for ipv4, mac in sorted(known.items())]
    flows.append(Flow(Table.ARP_RESOLVE, Prio.CATCH, make_match(base), PUNT,
                      kind=KIND_NEXT_HOP, obj_id=nid))
    return flows


# --- owner: route link --------------------------------------------------------------
def route_link_flows(view: View, route_link_uuid: str) -> list[Flow]:
    topo = topology(view)
    router = topo.routers.get(route_link_uuid)
    if router is None:
        return []
    me = view.binding.datapath_uuid
    flows = []
    obj = router.id
    virtual = sorted(n for n in topo.networks_of_component(topo.component(route_link_uuid))
                     if view.is_virtual(n))
    for port in router.ports.values():
        gateway = port.gateway_datapath
        if gateway is None:
            continue
        if gateway != me:
            exit_id = interface_id(view, port.interface_uuid)
            for network in virtual:
                actions, _why = send_path(view, gateway, network, [])
                if actions is not None:
                    match = make_match({REG_OUTPORT: exit_id},
                                       metadata=on_network(view.network_id(network)))
                    flows.append(Flow(Table.OUTPUT, Prio.NORMAL, match, actions,
                                      kind=KIND_TO_GATEWAY, obj_id=obj))
    if any(p.gateway_datapath == me for p in router.ports.values()):
        flows += _forwarded_in(view, topo, route_link_uuid, obj)
    return flows


def _forwarded_in(view: View, topo: Topology, route_link_uuid: str, obj: int) -> list[Flow]:
    """What the other datapaths forward to us, the gateway, on each virtual network of
    the router's component: back to ROUTE with the router port MAC as eth_dst."""
    me = view.binding.datapath_uuid
    router = topo.routers[route_link_uuid]
    flows = []
    for network, port in sorted(router.ports.items()):
        if not port.ingress or not view.is_virtual(network):
            continue
        nid = view.network_id(network)
        into = classify_to(nid, REMOTE)

        def ours(q: Prefix, port: Port = port) -> bool | None:
            path = topo.resolve(router, q) if router.lpm(q) is not None else None
            return True if path is not None and path.gateway_datapath == me else None

        if view.binding.transport == "tunnel":
            if view.binding.tunnel_ofport is None or not any(
                    ours(q) for q in topo.breakpoints(topo.component(route_link_uuid))):
                continue
            match = make_match(in_port=view.binding.tunnel_ofport,
                               tunnel_id=int(view.network(network)["segment_id"]),
                               eth_dst=port.mac, eth_type=ETH_IPV4)
            flows.append(Flow(Table.CLASSIFY, Prio.EXACT, match, metadata=into,
                              goto=Table.DNAT, kind=KIND_FORWARDED_IN, obj_id=obj))
            continue
        dpn, underlay = view.my_dpn(network), view.underlay_port(network)
        if dpn is None or underlay is None:
            continue
        base = {"in_port": underlay, "eth_dst": dpn["broadcast_mac_address"].lower(),
                "eth_type": ETH_IPV4}
        table = minimal_prefix_table(topo.breakpoints(topo.component(route_link_uuid)), ours)
        for q, _ in table:
            value = ipv4_prefix_value(str(q.network_address), q.prefixlen)
            match = make_match(dict(base, **({"ipv4_dst": value} if value else {})))
            priority = Prio.EXACT + q.prefixlen
            if _ is None:  # a more specific prefix not routed through us: as usual
                flows.append(Flow(Table.CLASSIFY, priority, match, metadata=into,
                                  goto=Table.RX_DST, kind=KIND_FORWARDED_IN, obj_id=obj))
            else:
                flows.append(Flow(Table.CLASSIFY, priority, match,
                                  (SetField("eth_dst", port.mac),), metadata=into,
                                  goto=Table.DNAT, kind=KIND_FORWARDED_IN, obj_id=obj))
    return flows


# --- dependencies -------------------------------------------------------------------
def dirty(change: Change, view: View) -> set[OwnerKey]:
    """The router component's links and networks (ports, routes, segments), the
    networks an interface leases on (the model's next hops), and datapath_networks,
    host interfaces and their leases (transport toward the gateway) for every router."""
    out = deps.routers(change, view)
    topo = topology(view)
    for link in deps.router_links(view, change):
        members = (topo.component(link) or frozenset({link})) & topo.routers.keys()
        out |= {("network", n) for n in topo.networks_of_component(members)}
    for iface in deps.changed_interfaces(change):
        out |= deps.networks({n for n in view.networks_of(iface) if not view.is_virtual(n)})
        out |= deps.networks_using(view, iface)
        if deps.hosted_host_interfaces(view, iface):  # a transport endpoint
            out |= deps.all_of(view, "route_links", "route_link")
    if change.resource == "networks":
        out.add(("network", change.uuid))
    if change.resource == "datapath_networks":
        out |= deps.all_of(view, "route_links", "route_link")
        out |= {("network", r["network_uuid"]) for r in deps.rows(change)}
    return out


# --- packet-ins: MAC binding ---------------------------------------------------------
def _network_of(view: View, cookie: int) -> str | None:
    nid = cookie_parts(cookie)[1]
    return next((u for u in view.uuids("networks") if view.network_id(u) == nid), None)


def next_hop(view: View, network_uuid: str, destination: str) -> str | None:
    """Where a packet for `destination` routed onto a physical network goes: itself when
    on the network, else the ipv4_gateway of the longest route onto it containing it."""
    address = ipaddress.IPv4Address(destination)
    topo = topology(view)
    if address in topo.subnet(network_uuid):
        return destination
    best = None
    for link in topo.attached.get(network_uuid, []):
        for route in topo.routers[link].routes:
            if route.out_network == network_uuid and route.next_hop and address in route.prefix \
                    and (best is None or route.prefix.prefixlen > best.prefix.prefixlen):
                best = route
    return best.next_hop if best is not None else None


def arp_request(view: View, network_uuid: str, target: str) -> PacketOut | None:
    """An ARP request for `target` from our port on the network, out of the segment."""
    segment = _segment_port(view, network_uuid)
    for port in gateway_ports(view, network_uuid):
        source = port.ipv4 or next((a.ipv4 for a in view.addresses_of(port.interface_uuid)
                                    if a.network_uuid == network_uuid), None)
        if segment is None or source is None:
            continue
        frame = packet.Packet()
        frame.add_protocol(ethernet.ethernet("ff:ff:ff:ff:ff:ff", port.mac, ETH_ARP))
        frame.add_protocol(arp.arp(opcode=ARP_REQUEST, src_mac=port.mac, src_ip=source,
                                   dst_mac="00:00:00:00:00:00", dst_ip=target))
        frame.serialize()
        return PacketOut(segment, bytes(frame.data))
    return None


def packet_in(view: View, punted: PacketIn) -> list[PacketOut]:
    network = _network_of(view, punted.cookie)
    table = punted.neighbors
    if network is None or table is None:
        return []
    parsed = packet.Packet(punted.data)
    reply = parsed.get_protocol(arp.arp)
    if reply is not None:  # an answer to our request: learn it (the agent recomputes)
        if reply.opcode == ARP_REPLY:
            table.learn(network, reply.src_ip, reply.src_mac)
        return []
    ip = parsed.get_protocol(ipv4.ipv4)
    hop = next_hop(view, network, ip.dst) if ip is not None else None
    if hop is None or not table.should_ask(network, hop):
        return []
    request = arp_request(view, network, hop)
    return [request] if request is not None else []


FEATURE = Feature(
    name="edge_router",
    kinds=frozenset({KIND_SEGMENT_IN, KIND_FORWARDED_IN, KIND_PORT_ARP, KIND_NEXT_HOP,
                     KIND_TO_GATEWAY}),
    owners={"network": network_flows, "route_link": route_link_flows},
    dirty=dirty,
    packet_in=packet_in,
)
