"""What a router answers itself: ICMP echo to any of its addresses, on the source
datapath, without the controller.

Each ingress port of a router answers echo requests sent to its own MAC and to any
router address the packet reaches (`answered_addresses`: the gateway, the router's
addresses on its other networks, and those of routers further along a chain, as Linux
routers answer for every local address) by turning the request into the reply in place
(OVS fixes the IPv4 and ICMP checksums on set_field); any other packet for such an
address is dropped, since a router consumes what is addressed to it and must not route
it on.

Owner: the route_link, like ROUTE.  The port set (MAC, IP, ingress) is read from the
router topology, so the dependency rule is the router's (vna.deps.router_links).

Fragmented echo (RFC 1122 3.2.2.6: the reply carries the request's full data): the
switch cannot reassemble, and only the first fragment carries the ICMP header, so the
one-flow answer cannot work for `ping -s 3000`.  Each local vif gets, per address its
gateway answers, one flow above the echo responder that punts every fragment of ICMP to
that gateway through the vif's meter (`nw_frag=yes`); unfragmented echo never reaches
the controller.  The handler reassembles (vna.ipfrag: bounded, 15 s timeout, overlaps
dropped) and answers a complete echo request with the reply fragmented to the largest
fragment it received, out of the port it came from.  Owner: the interface (the vif's
port and meter); its rule adds the vifs on the networks of a changed router's component.
"""

from __future__ import annotations

import logging

from os_ken.lib.packet import ethernet, icmp, ipv4, packet, packet_utils

from vna import deps, ipfrag
from vna.actions import IN_PORT, Move, Output, SetField
from vna.feature import Feature, OwnerKey
from vna.features.common import local_vif
from vna.flows import Flow, make_match
from vna.modelstore import Change
from vna.pipeline import (
    ETH_IPV4,
    ICMP_ECHO_REPLY,
    ICMP_ECHO_REQUEST,
    IP_FRAG_ANY,
    IP_PROTO_ICMP,
    Prio,
    Table,
    on_network,
)
from vna.punt import PacketIn, PacketOut, punt_actions
from vna.routers import Port, Router, Topology, prefix, topology
from vna.view import View

log = logging.getLogger("vna.gateway")

KIND_GATEWAY = 0x52  # obj route_links.id
KIND_GATEWAY_FRAGMENT = 0x53  # obj interfaces.id (the local vif whose fragments punt)
IP_MF = 0x1  # ipv4.flags: more fragments

# The agent's fragments in reassembly (one worker thread calls the handler).  Keys carry
# the datapath and ingress port, so each vif's datagrams are its own.
REASSEMBLY = ipfrag.Reassembler()


def answered_addresses(topo: Topology, router: Router, port: Port) -> list[str]:
    """The router addresses a packet entering `router` by `port` reaches: every address
    of a router port on the network the packet would be routed onto (its own gateway and
    its other ports, and routers further along a chain), as Linux routers answer for
    every local address.  Sorted; cached per topology."""
    cache = topo.__dict__.setdefault("_answered", {})
    key = (router.uuid, port.network_uuid)
    if key not in cache:
        found: set[str] = set()
        for other in topo.routers.values():
            for owner in other.ports.values():
                if owner.ipv4 is None:
                    continue
                if owner.route_link_uuid == router.uuid:
                    found.add(owner.ipv4)  # its own addresses, whatever its routes
                    continue
                q = prefix(owner.ipv4, 32)
                path = topo.resolve(router, q) if router.lpm(q) is not None else None
                if path is not None and path.network_uuid == owner.network_uuid:
                    found.add(owner.ipv4)
        cache[key] = sorted(found, key=lambda a: tuple(int(x) for x in a.split(".")))
    return cache[key]


def route_link_flows(view: View, route_link_uuid: str) -> list[Flow]:
    topo = topology(view)
    router = topo.routers.get(route_link_uuid)
    if router is None:
        return []
    flows = []
    for port in sorted(router.ports.values(), key=lambda p: view.network_id(p.network_uuid)):
        # A port without ingress accepts no traffic at all, pings included.
        if port.ingress and port.ipv4 is not None:
            for address in answered_addresses(topo, router, port):
                flows += _port_flows(view, port, address, router.id)
    return flows


def _port_flows(view: View, port: Port, address: str, router_id: int) -> list[Flow]:
    to_router = {
        "metadata": on_network(view.network_id(port.network_uuid)),
        "eth_dst": port.mac,
        "eth_type": ETH_IPV4,
        "ipv4_dst": address,
    }
    echo = make_match(to_router, ip_proto=IP_PROTO_ICMP, icmpv4_type=ICMP_ECHO_REQUEST)
    reply = (
        Move("eth_src", "eth_dst", 48),
        SetField("eth_src", port.mac),
        Move("ipv4_src", "ipv4_dst", 32),
        SetField("ipv4_src", address),
        SetField("icmpv4_type", ICMP_ECHO_REPLY),
        Output(IN_PORT),
    )
    common = {"kind": KIND_GATEWAY, "obj_id": router_id}
    return [
        Flow(Table.ROUTE, Prio.GATEWAY_ECHO, echo, reply, **common),
        Flow(Table.ROUTE, Prio.GATEWAY, make_match(to_router), **common),
    ]


# ------------------------------------------------------------ fragmented echo

def _gateways(view: View, interface_uuid: str
              ) -> tuple[int, list[tuple[str, Port, str]]] | None:
    """(ofport, [(eth_src, gateway port, answered address)]) of a local vif: each MAC's
    network's ingress router ports with an address, with each router address answered
    through that port; None if the vif is not local."""
    vif = local_vif(view, interface_uuid)
    if vif is None:
        return None
    topo = topology(view)
    found = []
    for mac, (network, _) in sorted(vif.macs.items()):
        for link in topo.attached.get(network, []):
            router = topo.routers[link]
            port = router.ports[network]
            if port.ingress and port.ipv4 is not None:
                found += [(mac, port, a) for a in answered_addresses(topo, router, port)]
    return vif.ofport, found


def interface_flows(view: View, interface_uuid: str) -> list[Flow]:
    """Per gateway of a local vif's network: fragments of ICMP to it -> controller."""
    local = _gateways(view, interface_uuid)
    if local is None:
        return []
    ofport, gateways = local
    obj_id = int(view.interface(interface_uuid)["id"])
    flows = {
        Flow(
            Table.ROUTE,
            Prio.GATEWAY_FRAGMENT,
            make_match(
                in_port=ofport,
                metadata=on_network(view.network_id(port.network_uuid)),
                eth_dst=port.mac,
                eth_type=ETH_IPV4,
                ip_proto=IP_PROTO_ICMP,
                ipv4_dst=address,
                ip_frag=(IP_FRAG_ANY, IP_FRAG_ANY),
            ),
            punt_actions(ofport),
            kind=KIND_GATEWAY_FRAGMENT,
            obj_id=obj_id,
        )
        for _, port, address in gateways
    }
    return sorted(flows, key=lambda f: f.cookie)


def dirty(change: Change, view: View) -> set[OwnerKey]:
    """The routers' rule (echo and drop flows), plus for the fragment punts: the vif
    itself, and every interface on a network of a changed router's component."""
    out = deps.routers(change, view) | deps.own_interface(change, view)
    topo = topology(view)
    for link in deps.router_links(view, change):
        # A vif punts fragments to every router address reachable through its gateway:
        # any router of the component can add or remove one.
        for member in topo.component(link) or {link}:
            router = topo.routers.get(member)
            for network in router.ports if router is not None else ():
                out |= deps.interfaces_on(view, network)
    return out


def _answers_for(view: View, in_port: int, eth_src: str, eth_dst: str, dst: str) -> bool:
    """Whether the flows punt fragments from (in_port, eth_src) to gateway (eth_dst,
    dst) - checked again on the current View before answering."""
    vif = next((u for u, p in view.binding.ports.items() if p == in_port), None)
    local = _gateways(view, vif) if vif is not None else None
    return local is not None and any(
        mac == eth_src and port.mac == eth_dst and address == dst
        for mac, port, address in local[1]
    )


def fragment_answer(view: View, packet_in: PacketIn) -> list[PacketOut]:
    """Store one punted fragment; when it completes an ICMP echo request to the
    gateway, the echo reply with the full data, fragmented to the largest fragment
    received.  Anything else (incomplete, not an echo request, bad checksum) is
    consumed without answer, like the gateway's drop flow."""
    eth, _, rest = ethernet.ethernet.parser(packet_in.data)
    ip, _, data = ipv4.ipv4.parser(rest)
    header_len = ip.header_length * 4
    if (eth.ethertype != ETH_IPV4 or ip.proto != IP_PROTO_ICMP or header_len < 20
            or ip.total_length > len(rest) or packet_utils.checksum(rest[:header_len]) != 0):
        return []
    key = (view.binding.datapath_uuid, packet_in.in_port, ip.src, ip.dst, ip.proto,
           ip.identification)
    piece = ipfrag.Fragment(ip.offset * 8, bool(ip.flags & IP_MF), bytes(data))
    done = REASSEMBLY.add(key, (view.binding.datapath_uuid, packet_in.in_port), piece,
                          header_len, ip.total_length)
    if done is None or len(done.payload) < icmp.icmp._MIN_LEN:
        return []
    request, _, _ = icmp.icmp.parser(done.payload)
    if request.type != ICMP_ECHO_REQUEST or packet_utils.checksum(done.payload) != 0:
        return []
    if not _answers_for(view, packet_in.in_port, eth.src, eth.dst, ip.dst):
        return []
    reply = icmp.icmp(type_=ICMP_ECHO_REPLY, code=request.code, csum=0, data=request.data)
    payload = bytes(reply.serialize(bytearray(), None))
    return [PacketOut(IN_PORT, _frame(eth, ip, part))
            for part in ipfrag.fragment(payload, done.largest)]


def _frame(request_eth: ethernet.ethernet, request_ip: ipv4.ipv4,
           piece: ipfrag.Fragment) -> bytes:
    frame = packet.Packet()
    frame.add_protocol(ethernet.ethernet(dst=request_eth.src, src=request_eth.dst,
                                         ethertype=ETH_IPV4))
    frame.add_protocol(ipv4.ipv4(src=request_ip.dst, dst=request_ip.src, proto=IP_PROTO_ICMP,
                                 ttl=64, identification=request_ip.identification,
                                 flags=IP_MF if piece.more else 0, offset=piece.offset // 8))
    frame.add_protocol(piece.data)
    frame.serialize()
    return bytes(frame.data)


FEATURE = Feature(
    name="gateway",
    kinds=frozenset({KIND_GATEWAY, KIND_GATEWAY_FRAGMENT}),
    owners={"route_link": route_link_flows, "interface": interface_flows},
    dirty=dirty,
    packet_in=fragment_answer,
)
