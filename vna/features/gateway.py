"""What a router answers itself: ICMP echo to its gateway address, on the source
datapath, without the controller.

Each ingress port of a router answers echo requests sent to its own MAC and IP by
turning the request into the reply in place (OVS fixes the IPv4 and ICMP checksums on
set_field); any other packet for that address is dropped, since a router consumes what
is addressed to it and must not route it back out.  Only the gateway of the packet's own
network answers: a VM pinging the router's address on another network is routed toward
that network like any packet and dropped there (ARP_RESOLVE knows no such host).  Linux
routers answer for every local address; the simple rule covers "ping my gateway".

Owner: the route_link, like ROUTE.  The port set (MAC, IP, ingress) is read from the
router topology, so the dependency rule is the router's (vna.deps.router_links).
"""

from __future__ import annotations

from vna import deps
from vna.actions import IN_PORT, Move, Output, SetField
from vna.feature import Feature
from vna.flows import Flow, make_match
from vna.pipeline import (
    ETH_IPV4,
    ICMP_ECHO_REPLY,
    ICMP_ECHO_REQUEST,
    IP_PROTO_ICMP,
    Prio,
    Table,
    on_network,
)
from vna.routers import Port, topology
from vna.view import View

KIND_GATEWAY = 0x52  # obj route_links.id


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
        Move("eth_src", "eth_dst", 48),
        SetField("eth_src", port.mac),
        Move("ipv4_src", "ipv4_dst", 32),
        SetField("ipv4_src", port.ipv4),
        SetField("icmpv4_type", ICMP_ECHO_REPLY),
        Output(IN_PORT),
    )
    common = {"kind": KIND_GATEWAY, "obj_id": router_id}
    return [
        Flow(Table.ROUTE, Prio.GATEWAY_ECHO, echo, reply, **common),
        Flow(Table.ROUTE, Prio.GATEWAY, make_match(to_gateway), **common),
    ]


FEATURE = Feature(
    name="gateway",
    kinds=frozenset({KIND_GATEWAY}),
    owners={"route_link": route_link_flows},
    dirty=deps.routers,
)
