"""The pipeline layout: table numbers, metadata bits, priorities and cookie kinds.

This is the only module that defines these numbers; docs/pipeline.md explains them
with a worked example.  Tables are spaced by 10 so a feature can be slotted in later
without renumbering installed flows.
"""

from __future__ import annotations

from enum import IntEnum


class Table(IntEnum):
    CLASSIFY = 0
    """Ingress port -> network.  Local vif: (in_port, eth_src) writes the network of that
    MAC and goes to ANTISPOOF.  Tunnel port: (in_port, tunnel_id=segment) writes
    network|REMOTE -> L2_LOOKUP.  mac2mac underlay port: (in_port, eth_dst=our
    datapath_network MAC) writes network|REMOTE -> RX_DST.  Physical network host port:
    (in_port) writes network|PHYSICAL -> L2_LOOKUP.  Miss: drop."""

    ANTISPOOF = 10
    """Only local vif traffic.  IPv4 with a leased source address, or ARP whose sender
    hardware/protocol addresses are the vif's own -> ARP.  Miss: drop (other ethertypes,
    spoofed sources, DHCP/ARP probes with 0.0.0.0)."""

    ARP = 20
    """ARP responder.  Requests for any IP the model knows on a virtual network are
    answered out of IN_PORT.  Other ARP on virtual networks: drop.  Physical networks:
    ARP passes to L2_LOOKUP (real L2 semantics).  Non-ARP -> ROUTE."""

    ROUTE = 30
    """Distributed router, source side only.  First the router's own addresses: (network,
    eth_dst=router port MAC, ipv4_dst=its gateway IP) answers ICMP echo out of IN_PORT
    and drops anything else.  Then (network, eth_dst=router port MAC,
    ipv4_dst in prefix) -> metadata := final destination network, eth_src := MAC of the
    last router's port there, dec_ttl once per router on the precomputed path,
    -> NEXTHOP.  Longest prefix wins through priority.  Miss -> L2_LOOKUP."""

    NEXTHOP = 40
    """(network, ipv4_dst) -> eth_dst := MAC of the interface leasing that address,
    -> L2_LOOKUP.  Miss: drop (routed to an address nobody holds)."""

    RX_DST = 50
    """mac2mac receive, part 1: (network, ipv4_dst of a local vif) -> eth_dst := its MAC,
    -> RX_SRC.  Miss: drop (only local delivery is possible from the underlay)."""

    RX_SRC = 51
    """mac2mac receive, part 2: (network, ipv4_src of a known interface) -> eth_src := its
    MAC; (network, routed source prefix) -> eth_src := MAC of the router port on this
    network toward that prefix; -> L2_LOOKUP.  Miss: drop."""

    L2_LOOKUP = 60
    """(network, eth_dst).  Local vif -> output its port.  Remote vif on a virtual network,
    only for packets not from the underlay -> tunnel or mac2mac encapsulation and output.
    Physical networks: flood to local ports (+ the physical port unless the packet came
    from it).  Miss: drop - virtual networks never flood."""


# --- metadata layout ---------------------------------------------------------------
# bits 0-31 : network id (networks.id), written by CLASSIFY, rewritten by ROUTE
# bit 32    : REMOTE   - arrived from the underlay (tunnel or mac2mac): deliver locally only
# bit 33    : PHYSICAL - arrived from a physical network's host port: never send it back
NETWORK_MASK = 0xFFFF_FFFF
REMOTE = 1 << 32
PHYSICAL = 1 << 33
METADATA_MASK = NETWORK_MASK | REMOTE | PHYSICAL


def on_network(network_id: int) -> tuple[int, int]:
    """metadata match for 'on this network', whatever the origin flags."""
    return (network_id, NETWORK_MASK)


def on_network_from(network_id: int, origin: int) -> tuple[int, int]:
    """metadata match for 'on this network and arrived with exactly this origin flag set'
    (origin 0 = from a local port)."""
    return (network_id | origin, NETWORK_MASK | REMOTE | PHYSICAL)


def classify_to(network_id: int, origin: int = 0) -> tuple[int, int]:
    """write-metadata value/mask for the classifier: sets the network and every flag."""
    return (network_id | origin, METADATA_MASK)


# --- priorities --------------------------------------------------------------------
class Prio(IntEnum):
    MISS = 0
    CATCH = 1  # catch-all of one protocol (e.g. "other ARP")
    PHYS_FLOOD_ANY = 10
    PHYS_FLOOD_FROM_PORT = 11
    PHYS_PORT = 50
    PHYS_ARP = 50
    NORMAL = 100
    # Longest prefix match: PREFIX_BASE + prefix length (0..32)
    PREFIX_BASE = 100
    # Exact addresses always beat prefixes in RX_SRC, even a /32 route
    EXACT = 200
    # ROUTE: packets for a router's own address beat every route entry (even a /32):
    # echo requests are answered, everything else is consumed (dropped).
    GATEWAY = 200
    GATEWAY_ECHO = 201


# --- cookie kinds (bits 63-56) -----------------------------------------------------
class Kind(IntEnum):
    """Feature + owner resource type.  obj_id ids are only unique per resource type, so
    a kind never mixes resource types."""

    DEFAULTS = 0x01  # obj 0: table-miss and catch-all flows
    CLASSIFY_IFACE = 0x10  # obj interfaces.id
    CLASSIFY_NETWORK = 0x11  # obj networks.id: tunnel/mac2mac/physical ingress
    ANTISPOOF = 0x20  # obj interfaces.id
    ARP = 0x30  # obj interfaces.id
    ARP_NETWORK = 0x31  # obj networks.id: physical network ARP bypass
    L2_IFACE = 0x40  # obj interfaces.id
    L2_NETWORK = 0x41  # obj networks.id: physical flooding
    ROUTE = 0x50  # obj route_links.id
    GATEWAY = 0x52  # obj route_links.id: ICMP echo responder of the router's ports
    NEXTHOP = 0x51  # obj interfaces.id
    RX_IFACE = 0x60  # obj interfaces.id: mac2mac receive restore
    RX_NETWORK = 0x61  # obj networks.id: mac2mac restore of routed sources


ETH_IPV4 = 0x0800
ETH_ARP = 0x0806
ARP_REQUEST = 1
ARP_REPLY = 2
IP_PROTO_ICMP = 1
ICMP_ECHO_REPLY = 0
ICMP_ECHO_REQUEST = 8
# A router path longer than this is treated as a loop and dropped.
MAX_ROUTER_HOPS = 8
