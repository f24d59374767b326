"""The pipeline layout, declared as data: tables with their contracts, metadata bits,
registers and priorities.

This is the only module that defines these numbers; docs/pipeline.md explains them with
a worked example.  The table-miss flows are generated from the declarations
(`miss_flows`), and tests/unit/test_vna_pipeline.py checks every generated flow against
its table's declaration.  Cookie kinds belong to the feature modules (vna.feature).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum

from vna.flows import Flow


class Stage(StrEnum):
    """OVN's halves: INGRESS runs where a packet enters (from a VM: its from-VM stages;
    or from the underlay); EGRESS runs on the datapath that delivers it to a VM, just
    before output (to-VM stages), whatever path the packet took."""

    INGRESS = "ingress"
    EGRESS = "egress"


class Table(IntEnum):
    """Table numbers, spaced so a stage can be slotted in without renumbering."""

    CLASSIFY = 0
    PUNT = 5
    ANTISPOOF = 10
    FROM_VM_CT = 12
    FROM_VM_ACL = 14
    FROM_VM_COMMIT = 16
    ARP = 20
    DNAT = 25
    DNAT_NEW = 27
    ROUTE = 30
    ARP_RESOLVE = 40
    SNAT = 45
    SNAT_NEW = 47
    RX_DST = 50
    RX_SRC = 51
    L2_LOOKUP = 60
    TO_VM_CT = 70
    TO_VM_ACL = 72
    TO_VM_COMMIT = 74
    OUTPUT = 80


_L2 = frozenset({"metadata", "eth_dst"})
_IP = frozenset({"eth_type", "ip_proto", "ipv4_src", "ipv4_dst", "ip_dscp"})
_L4 = frozenset({"tcp_src", "tcp_dst", "udp_src", "udp_dst", "icmpv4_type", "icmpv4_code"})
_CT = frozenset({"ct_state", "ct_zone", "ct_mark", "ct_label", "conj_id"})
_ACL = (frozenset({"metadata", "in_port", "eth_src", "eth_dst", "reg13", "reg14", "reg15",
                   "arp_spa", "arp_tpa"}) | _IP | _L4 | _CT)


@dataclass(frozen=True)
class TableSpec:
    """One table's contract (as Faucet's ValveTableConfig): what a miss does (goto a
    table, or drop when None), which fields its flows may match, whether its flows may
    send packets (output/controller), and what it decides."""

    table: Table
    stage: Stage
    miss: Table | None
    match: frozenset[str]
    sends: bool
    doc: str


PIPELINE: tuple[TableSpec, ...] = (
    TableSpec(
        Table.CLASSIFY, Stage.INGRESS, None,
        frozenset({"in_port", "eth_src", "eth_dst", "tunnel_id", "eth_type", "ipv4_dst"}),
        False,
        """Ingress port -> network.  Local vif: (in_port, eth_src) writes the network of
        that MAC and goes to PUNT.  Tunnel port: (in_port, tunnel_id=segment) writes
        network|REMOTE -> L2_LOOKUP.  mac2mac underlay port: (in_port, eth_dst=our
        datapath_network MAC) writes network|REMOTE -> RX_DST; (in_port, eth_dst=our
        datapath_route_link MAC, ipv4_dst in a prefix the router delivers) writes its
        network|REMOTE -> RX_DST.  Physical network host port: (in_port) writes
        network|PHYSICAL -> L2_LOOKUP.  Miss: drop.""",
    ),
    TableSpec(
        Table.PUNT, Stage.INGRESS, Table.ANTISPOOF,
        frozenset({"metadata", "in_port", "eth_src", "eth_dst", "eth_type"}) | _IP | _L4, True,
        """Controller-answered protocols (DHCP, DNS): a local vif's packets that a
        feature answers from the controller are sent there, through the vif's meter
        (vna.punt); before ANTISPOOF because a DHCP client has no address yet.  DHCP:
        (in_port, network, eth_src, udp 68 -> 67) of a local vif on a network with a
        dhcp service.  DNS: (in_port, network, udp to the dns service address port 53).
        Miss -> ANTISPOOF.""",
    ),
    TableSpec(
        Table.ANTISPOOF, Stage.INGRESS, None,
        frozenset({"in_port", "eth_src", "eth_type", "ipv4_src", "arp_sha", "arp_spa"}),
        False,
        """Port security, local vifs only.  IPv4 with a leased source address, or ARP
        whose sender hardware/protocol addresses are the vif's own -> FROM_VM_CT.  Miss:
        drop (other ethertypes, spoofed sources, DHCP/ARP probes with 0.0.0.0).""",
    ),
    TableSpec(
        Table.FROM_VM_CT, Stage.INGRESS, Table.FROM_VM_ACL, _ACL, False,
        """From-VM conntrack, for a local vif whose traffic is filtered (in a security
        group, ingress_filtering_enabled or enable_filtering): (in_port, ip) -> reg13 :=
        its conntrack zone (= its ofport) | FROM_VM_TRACKED [| EGRESS_FILTERED], ct() in
        that zone -> FROM_VM_ACL.  The VM's own connections are tracked here so their
        replies are +rpl when the to-VM stage looks them up in the same zone.  Miss (other
        vifs, non-IP) -> FROM_VM_ACL.""",
    ),
    TableSpec(
        Table.FROM_VM_ACL, Stage.INGRESS, Table.ARP, _ACL, False,
        """From-VM ACL (what a VM may send), for tracked packets (reg13 FROM_VM_TRACKED):
        invalid -> drop; replies of connections not blocked -> ARP; replies of blocked
        ones -> drop; static filter drops (enable_filtering, egress direction: to
        ipv4_address, dst port) -> drop; static passes, egress_passthrough or a vif
        without egress filtering -> FROM_VM_COMMIT; anything else: an established
        connection is marked blocked (ct_mark) and dropped, a new one dropped.  ARP
        drop statics (in_port, arp_tpa) -> drop.  Miss (untracked) -> ARP.""",
    ),
    TableSpec(
        Table.FROM_VM_COMMIT, Stage.INGRESS, Table.ARP, _ACL, False,
        """Allowed from-VM packets: a new connection is committed in the zone of reg13
        (ct_mark 0), an established one that was blocked is unblocked; -> ARP.  Miss ->
        ARP.""",
    ),
    TableSpec(
        Table.ARP, Stage.INGRESS, Table.DNAT,
        frozenset({"metadata", "eth_type", "arp_op", "arp_tpa"}), True,
        """ARP responder.  Requests for any IP the model knows on a virtual network are
        answered out of IN_PORT.  Other ARP on virtual networks: drop.  Physical
        networks: ARP passes to L2_LOOKUP (real L2 semantics).  Miss (non-ARP) ->
        DNAT.""",
    ),
    TableSpec(
        Table.DNAT, Stage.INGRESS, Table.ROUTE, _ACL, False,
        """NAT, inbound direction, on the gateway datapath of a router port on a physical
        network: what the segment sends to the port's MAC goes through ct(nat) in the NAT
        zone (reversing the translation of known connections) -> DNAT_NEW.  Miss ->
        ROUTE.""",
    ),
    TableSpec(
        Table.DNAT_NEW, Stage.INGRESS, Table.ROUTE, _ACL, False,
        """A new inbound connection to a global address (a static_address translation,
        optionally one port) is committed with nat(dst=the private address[:port]) ->
        ROUTE, which routes it there.  With enable_route_translation (and no
        passthrough) other new connections are dropped, except to the port's own address.
        Miss -> ROUTE.""",
    ),
    TableSpec(
        Table.ROUTE, Stage.INGRESS, Table.L2_LOOKUP,
        frozenset({"metadata", "eth_dst", "eth_type", "ip_proto", "ipv4_dst", "icmpv4_type",
                   "in_port", "ip_frag"}),
        True,
        """Distributed router, source side only.  First the routers' own addresses:
        (network, eth_dst=router port MAC, ipv4_dst=an address of a router the packet
        reaches) answers ICMP echo out of IN_PORT and drops anything else; fragments of
        ICMP to it are punted per local vif (in_port, its meter) to be reassembled and
        answered by the agent.  Then (network, eth_dst=router port MAC, ipv4_dst in
        prefix) -> metadata := final destination network, per router on the precomputed
        path dec_ttl and eth_src := its port MAC on the next network, -> ARP_RESOLVE; a
        prefix without a route -> the controller (ICMP network unreachable).  Longest
        prefix wins through priority.  Miss -> L2_LOOKUP.""",
    ),
    TableSpec(
        Table.ARP_RESOLVE, Stage.INGRESS, None,
        frozenset({"metadata", "eth_type", "ipv4_dst", "reg12"}), True,
        """ARP resolution of a routed packet (OVN's lr_in_arp_resolve): (network,
        ipv4_dst) -> eth_dst := MAC of the interface leasing that address, -> SNAT.
        Any other address on a routed network (priority 1) -> the controller, which
        answers ICMP host unreachable.  Miss: drop.""",
    ),
    TableSpec(
        Table.SNAT, Stage.INGRESS, Table.L2_LOOKUP, _ACL, False,
        """NAT, outbound direction, on the gateway: a packet routed onto the physical
        network through the port (eth_src = its MAC) goes through ct(nat) in the NAT zone
        -> SNAT_NEW.  Miss -> L2_LOOKUP.""",
    ),
    TableSpec(
        Table.SNAT_NEW, Stage.INGRESS, Table.L2_LOOKUP, _ACL, False,
        """A new outbound connection from a private address with a global one is
        committed with nat(src=the global address[:port]); from any other address, with
        a snat translation on the port, nat(src=the port's own address) (conntrack picks
        the source port); -> L2_LOOKUP.  With enable_route_translation (and no
        passthrough) other new connections are dropped.  Miss -> L2_LOOKUP.""",
    ),
    TableSpec(
        Table.RX_DST, Stage.INGRESS, None,
        frozenset({"metadata", "eth_type", "ipv4_dst"}), False,
        """mac2mac receive, part 1: (network, ipv4_dst of a local vif) -> eth_dst := its
        MAC, -> RX_SRC.  Miss: drop (only local delivery is possible from the
        underlay).""",
    ),
    TableSpec(
        Table.RX_SRC, Stage.INGRESS, None,
        frozenset({"metadata", "eth_type", "ipv4_src"}), False,
        """mac2mac receive, part 2: (network, ipv4_src of a known interface) -> eth_src :=
        its MAC; (network, routed source prefix) -> eth_src := MAC of the router port on
        this network toward that prefix; -> L2_LOOKUP.  Miss: drop.""",
    ),
    TableSpec(
        Table.L2_LOOKUP, Stage.INGRESS, None, _L2, False,
        """Decides where a frame goes, sends nothing: (network, eth_dst) -> reg15 :=
        outport (the interface id of a local vif, or of a remote vif on a virtual network
        for frames not from the underlay), or FLOOD on physical networks; ->
        TO_VM_CT.  Miss: drop - virtual networks never flood.""",
    ),
    TableSpec(
        Table.TO_VM_CT, Stage.EGRESS, Table.TO_VM_ACL, _ACL, False,
        """To-VM conntrack, on the datapath that delivers to a filtered local vif:
        (reg15 = its interface id, ip) -> reg13 := its zone | TO_VM_TRACKED, ct_clear
        (the packet may carry the source vif's zone), ct() in its zone -> TO_VM_ACL.
        Miss (unfiltered vifs, remote outports, non-IP) -> TO_VM_ACL.""",
    ),
    TableSpec(
        Table.TO_VM_ACL, Stage.EGRESS, Table.OUTPUT, _ACL, False,
        """To-VM ACL (what a VM accepts: security groups and static filters), enforced where
        the VM is delivered, whatever path the packet took.  For tracked packets (reg13
        TO_VM_TRACKED): invalid -> drop; replies (and related) of connections not blocked
        -> OUTPUT; of blocked ones -> drop; static drops -> drop; static passes and
        ingress_passthrough -> TO_VM_COMMIT; a security group rule (conjunction of
        destination vif x source address x protocol/port, one conj_id per rule) or the
        group's isolation (destination vif x member source address) -> TO_VM_COMMIT;
        anything else: established -> marked blocked and dropped (this cuts connections
        whose rule was removed), new -> dropped.  ARP drop statics (reg15, arp_spa) ->
        drop.  Miss (untracked) -> OUTPUT.""",
    ),
    TableSpec(
        Table.TO_VM_COMMIT, Stage.EGRESS, Table.OUTPUT, _ACL, False,
        """Allowed to-VM packets: a new connection is committed in the zone of reg13
        (ct_mark 0), a blocked established one is unblocked; -> OUTPUT.  Miss -> OUTPUT.""",
    ),
    TableSpec(
        Table.OUTPUT, Stage.EGRESS, None, frozenset({"metadata", "reg15"}), True,
        """Sends: reg15 = local vif -> output its port; reg15 = remote vif -> the
        transport toward its datapath (tunnel or mac2mac); reg15 = FLOOD on a physical
        network -> its local ports (+ the physical port unless it came from there).
        Miss: drop.""",
    ),
)
SPECS: dict[Table, TableSpec] = {spec.table: spec for spec in PIPELINE}


# --- registers (NXM, 32 bits each) ----------------------------------------------------
# reg15: outport - L2_LOOKUP's decision, read by the egress stages and OUTPUT: the
#        interfaces.id of the destination vif, or OUTPORT_FLOOD.
# reg14: inport - reserved for the interfaces.id of the local vif a packet entered from;
#        not written yet.
# reg13: conntrack - bits 0-15 the conntrack zone of the vif a stage filters for (its
#        ofport: unique on the bridge and stable while the port exists, so conntrack
#        state survives a vna restart), plus the flags below.  The from-VM stage writes
#        it, the to-VM stage overwrites it, ct() and the commit tables read the zone.
# reg12: next hop - the IPv4 address (as an integer) a packet routed onto a physical
#        network is delivered to: its destination, or its route's ipv4_gateway.  ROUTE
#        writes it on the gateway datapath; ARP_RESOLVE resolves it (MAC binding).
REG_OUTPORT = "reg15"
REG_INPORT = "reg14"
REG_CT = "reg13"
REG_NEXTHOP = "reg12"
OUTPORT_FLOOD = 0xFFFF_FFFF
CT_ZONE_MASK = 0xFFFF
FROM_VM_TRACKED = 1 << 16  # the from-VM stage tracked this packet in the zone
EGRESS_FILTERED = 1 << 17  # ...and the vif's outbound traffic is filtered (statics)
TO_VM_TRACKED = 1 << 18  # the to-VM stage tracked this packet in the zone
# ct_mark of a connection an ACL no longer allows (OVN's ct_label.blocked): its packets
# are dropped both ways until a rule allows it again.
CT_MARK_BLOCKED = 1
# Conntrack zone of the gateway's NAT (vna.features.nat): above every vif zone (ofports).
NAT_ZONE = 0xFFF0


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
    # ...and a fragment of ICMP to it (even the first one, which carries the echo
    # header) goes to the controller, which reassembles it and answers in full.
    GATEWAY_FRAGMENT = 202
    # PUNT: a local vif's DNS query to its network's dns service (vna.features.dns).
    PUNT_DNS = 100


class AclPrio(IntEnum):
    """Priorities of FROM_VM_ACL / TO_VM_ACL, highest first: conntrack verdicts, then
    static filter drops (OpenVNet: a drop static beats every pass), passes, security
    group rules, and the default deny."""

    INVALID = 300
    REPLY = 290
    BLOCKED_REPLY = 280
    STATIC_DROP = 250
    STATIC_PASS = 210
    PASSTHROUGH = 205
    # Conjunction clauses and conj_id flows of security group rules.  All at one
    # priority: OVS only combines clauses of equal priority.
    RULE = 200
    DENY_ESTABLISHED = 20
    DENY = 10


# --- table misses -----------------------------------------------------------------
# Cookie kind of the datapath-wide miss flows; every other kind belongs to a feature.
KIND_MISS = 0x01
# Cookie kind of conjunction clause flows merged across owners (vna.desired): one
# installed flow per (table, priority, match) carrying every owner's conjunction()s.
KIND_CLAUSE = 0x02


def miss_flows() -> list[Flow]:
    """One explicit priority-0 flow per declared table, so dump-flows shows every
    decision and OVS never needs an implicit miss (which OF1.3 drops)."""
    return [
        Flow(spec.table, Prio.MISS, (), goto=spec.miss, kind=KIND_MISS) for spec in PIPELINE
    ]


ETH_IPV4 = 0x0800
ETH_ARP = 0x0806
ARP_REQUEST = 1
ARP_REPLY = 2
IP_PROTO_ICMP = 1
IP_PROTO_UDP = 17
UDP_PORT_DNS = 53
# ip_frag (NXM_NX_IP_FRAG; ovs-ofctl prints nw_frag) value/mask: bit 0 = any fragment,
# bit 1 = not the first one.  (1, 1) is "nw_frag=yes": every fragment of a datagram.
IP_FRAG_ANY = 1
IP_FRAG_LATER = 2
ICMP_ECHO_REPLY = 0
ICMP_ECHO_REQUEST = 8
# A router path longer than this is treated as a loop and dropped.
MAX_ROUTER_HOPS = 8
