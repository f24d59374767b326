"""What a router answers itself: ICMP echo to its gateway address, on the source
datapath, without the controller.

Each ingress port of a router answers echo requests sent to its own MAC and IP by
turning the request into the reply in place (OVS fixes the IPv4 and ICMP checksums on
set_field); any other packet for that address is dropped, since a router consumes what
is addressed to it and must not route it back out.  Only the gateway of the packet's own
network answers: a VM pinging the router's address on another network is routed toward
that network like any packet and dropped there (NEXTHOP knows no such host).  Linux
routers answer for every local address; the simple rule covers "ping my gateway".

Owner: the route_link, like ROUTE.  The port set (MAC, IP, ingress) is read from the
router topology, and vna.dirty already recomputes every router of a component when one
of its port interfaces, their leases, its routes or its networks change.
"""

from __future__ import annotations

from vna.flows import Flow, make_match
from vna.pipeline import (
    ETH_IPV4,
    ICMP_ECHO_REPLY,
    ICMP_ECHO_REQUEST,
    IP_PROTO_ICMP,
    Kind,
    Prio,
    Table,
    on_network,
)
from vna.routers import Port, topology
from vna.view import View


def route_link_flows(view: View, route_link_uuid: str) -> list[Flow]:
    router = topology(view).routers.get(route_link_uuid)
    if router is None:
        return []
    flows = []
    for port in sorted(router.ports.values(), key=lambda p: view.network_id(p.network_uuid)):
        # A port without ingress accepts no traffic at all, pings included.
        if port.ingress and port.ipv4 is not None:
            flows += _port_flows(view, port, router.id)
    return flows


def _port_flows(view: View, port: Port, router_id: int) -> list[Flow]:
    to_gateway = {
        "metadata": on_network(view.network_id(port.network_uuid)),
        "eth_dst": port.mac,
        "eth_type": ETH_IPV4,
        "ipv4_dst": port.ipv4,
    }
    echo = make_match(to_gateway, ip_proto=IP_PROTO_ICMP, icmpv4_type=ICMP_ECHO_REQUEST)
    reply = (
        ("move", "eth_src", "eth_dst", 48),
        ("set_field", "eth_src", port.mac),
        ("move", "ipv4_src", "ipv4_dst", 32),
        ("set_field", "ipv4_src", port.ipv4),
        ("set_field", "icmpv4_type", ICMP_ECHO_REPLY),
        ("output", "IN_PORT"),
    )
    common = {"kind": Kind.GATEWAY, "obj_id": router_id}
    return [
        Flow(Table.ROUTE, Prio.GATEWAY_ECHO, echo, reply, **common),
        Flow(Table.ROUTE, Prio.GATEWAY, make_match(to_gateway), **common),
    ]
