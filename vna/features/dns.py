"""DNS answered at the edge: a network's dns service, on the datapath of the asking VM.

A dns service (vna.dns_model) is a simulated interface with a lease on a virtual
network; the ARP responder answers for its address like any simulated interface.  Each
local vif gets, per MAC whose network has a dns service, one PUNT flow: (in_port,
network, udp to the service's address, port 53) -> the vif's meter, controller.  Only
UDP: a resolver falls back to TCP only on a truncated answer, and the answers given here
are a few records (TCP to the service address is dropped by nobody answering it).

The handler answers from the View current when the query arrives, so record changes
apply to the next query:
- A for a record's `name` or `name.<domain_name of the service's network>` (every
  record with that name, TTL the lowest of theirs); PTR (in-addr.arpa) for a record's
  address, pointing at `name.<domain_name>` (or `name` when the network has none).
  Authoritative (AA).
- a name it knows asked for another type (AAAA, MX, ...): NOERROR with no answer, at once.
- any other name: forwarded to the service's `public_dns` upstreams from the vna process
  (vna.dns_forward, on resolver threads; the answer goes back by PacketIn.later);
  SERVFAIL when none answers or too many are waiting; REFUSED at once when the service
  has no upstream.  A client never waits for a timeout of ours.
The reply swaps the addresses (source: the service's MAC and address, port 53) and goes
out of the port the query came in.  A query from a source address its vif does not
lease on that MAC (ANTISPOOF comes after PUNT) is dropped.

Owner: the interface (the vif's port, MACs and networks).  Its flows also read the
network services of its networks, their interfaces and leases, and the networks' ids:
the rule adds every interface on the networks of a changed dns service or service
interface.  Records and dns_services rows are read at query time only.
"""

from __future__ import annotations

import ipaddress
import logging

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.reversename
import dns.rrset
from os_ken.lib.packet import ethernet, ipv4, packet, udp

from vna import deps, dns_model
from vna.actions import IN_PORT
from vna.dns_forward import Forwarder
from vna.feature import Feature, OwnerKey
from vna.features.common import local_vif
from vna.flows import Flow, make_match
from vna.modelstore import Change
from vna.pipeline import ETH_IPV4, IP_PROTO_UDP, UDP_PORT_DNS, Prio, Table, on_network
from vna.punt import PacketIn, PacketOut, punt_actions
from vna.view import Row, View

log = logging.getLogger("vna.dns")

KIND_DNS = 0x8D  # obj interfaces.id (the local vif whose queries punt)
# Queries to upstreams, shared by the agent (resolver threads; see vna.dns_forward).
FORWARDER = Forwarder()
PLAIN_UDP_SIZE = 512  # RFC 1035 4.2.1: without EDNS, answers fit 512 octets


# ------------------------------------------------------------------ flows

def interface_flows(view: View, interface_uuid: str) -> list[Flow]:
    vif = local_vif(view, interface_uuid)
    if vif is None:
        return []
    on = dns_model.servers(view)
    flows = {
        Flow(
            Table.PUNT,
            Prio.PUNT_DNS,
            make_match(
                in_port=vif.ofport,
                metadata=on_network(view.network_id(network)),
                eth_type=ETH_IPV4,
                ip_proto=IP_PROTO_UDP,
                ipv4_dst=server.ipv4,
                udp_dst=UDP_PORT_DNS,
            ),
            punt_actions(vif.ofport),
            kind=KIND_DNS,
            obj_id=vif.interface_id,
        )
        for network, _ in vif.macs.values()
        for server in on.get(network, [])
    }
    return sorted(flows, key=lambda f: repr(f.match))


def dirty(change: Change, view: View) -> set[OwnerKey]:
    """The vif itself; every interface on a network of a changed dns service (its row,
    its interface, that interface's leases); every interface on a changed network."""
    out = deps.own_interface(change, view)
    networks: set[str] = set()
    if change.resource == "network_services":
        for row in deps.rows(change):
            networks |= dns_model.server_networks(view, row["uuid"])
    for iface in deps.changed_interfaces(change):
        for server_list in dns_model.servers(view).values():
            networks |= {s.network_uuid for s in server_list if s.interface_uuid == iface}
    for network in networks:
        out |= deps.interfaces_on(view, network)
    return out


# ------------------------------------------------------------------ answers

def answer(view: View, packet_in: PacketIn) -> list[PacketOut]:
    pkt = packet.Packet(packet_in.data)
    eth, ip, datagram = (pkt.get_protocol(ethernet.ethernet), pkt.get_protocol(ipv4.ipv4),
                         pkt.get_protocol(udp.udp))
    if eth is None or ip is None or datagram is None or ip.flags & 1 or ip.offset:
        return []  # fragmented queries are not answered
    payload = pkt.protocols[-1]
    if not isinstance(payload, bytes | bytearray):
        return []
    server = _server_for(view, packet_in.in_port, eth.src, ip.src, ip.dst)
    if server is None or datagram.dst_port != UDP_PORT_DNS:
        return []

    def reply(wire: bytes) -> PacketOut:
        return PacketOut(IN_PORT, _frame(server, eth.src, ip.src, datagram.src_port, wire))

    try:
        query = dns.message.from_wire(bytes(payload))
    except dns.exception.DNSException:
        return []  # not a DNS message we can parse: no answer (as for garbage)
    if query.flags & dns.flags.QR:
        return []  # a response is never answered (no loops between resolvers)
    response, forward = _respond(view, server, query)
    if response is not None:
        return [reply(_to_wire(query, response))]
    config = dns_model.service_config(view, server.network_service_uuid)
    upstreams = dns_model.upstreams(config)
    if not upstreams:
        return [reply(_to_wire(query, _empty(query, dns.rcode.REFUSED)))]
    later = packet_in.later
    if later is None or not FORWARDER.submit(
            bytes(payload), upstreams,
            lambda wire: later(reply(wire if wire is not None
                                     else _to_wire(query, _empty(query, dns.rcode.SERVFAIL,
                                                                 forward))))):
        return [reply(_to_wire(query, _empty(query, dns.rcode.SERVFAIL, forward)))]
    return []


def _server_for(view: View, in_port: int, eth_src: str, ip_src: str, ip_dst: str
                ) -> dns_model.DnsServer | None:
    """The dns server a query from (in_port, eth_src, ip_src) to ip_dst reaches, checked
    on the current View: the port's vif, that MAC's network, a source it leases there."""
    vif_uuid = next((u for u, p in view.binding.ports.items() if p == in_port), None)
    vif = local_vif(view, vif_uuid) if vif_uuid is not None else None
    if vif is None or eth_src not in vif.macs:
        return None
    network, addresses = vif.macs[eth_src]
    if ip_src not in addresses:
        return None
    return next((s for s in dns_model.servers(view).get(network, []) if s.ipv4 == ip_dst), None)


def _respond(view: View, server: dns_model.DnsServer, query: dns.message.Message
             ) -> tuple[dns.message.Message | None, bool]:
    """(the answer, None when it must be forwarded; whether forwarding applies)."""
    if query.opcode() != dns.opcode.QUERY:
        return _empty(query, dns.rcode.NOTIMP), False
    if len(query.question) != 1:
        return _empty(query, dns.rcode.FORMERR), False
    question = query.question[0]
    if question.rdclass != dns.rdataclass.IN:
        return _empty(query, dns.rcode.REFUSED), False
    config = dns_model.service_config(view, server.network_service_uuid)
    domain = dns_model.domain_of(view, server.network_uuid)
    by_name, by_address = (dns_model.record_index(view, config["uuid"], domain)
                           if config is not None else ({}, {}))
    qname = question.name.to_text().lower()
    known = by_name.get(qname)
    if known:
        response = _empty(query, dns.rcode.NOERROR)
        response.flags |= dns.flags.AA
        if question.rdtype in (dns.rdatatype.A, dns.rdatatype.ANY):
            addresses = sorted({r["ipv4_address"] for r in known}, key=ipaddress.IPv4Address)
            response.answer.append(dns.rrset.from_text_list(
                question.name, _ttl(known), dns.rdataclass.IN, dns.rdatatype.A, addresses))
        return response, False
    known = by_address.get(_reverse(question.name) or "")
    if known:
        response = _empty(query, dns.rcode.NOERROR)
        response.flags |= dns.flags.AA
        if question.rdtype in (dns.rdatatype.PTR, dns.rdatatype.ANY):
            targets = sorted({_fqdn(r, domain) for r in known})
            response.answer.append(dns.rrset.from_text_list(
                question.name, _ttl(known), dns.rdataclass.IN, dns.rdatatype.PTR, targets))
        return response, False
    return None, True


def _fqdn(record: Row, domain: str | None) -> str:
    """What a PTR answer points at: `name.<domain>.`, or `name.` without a domain."""
    name = dns_model.host_name(record.get("name"))
    return f"{name}.{domain}." if domain is not None else f"{name}."


def _reverse(qname: dns.name.Name) -> str | None:
    """The IPv4 address of an in-addr.arpa name, None for any other name."""
    try:
        return dns.reversename.to_address(qname)
    except (dns.exception.DNSException, ValueError, SyntaxError):
        return None


def _ttl(rows: list[Row]) -> int:
    return min(int(r.get("ttl") if r.get("ttl") is not None else 60) for r in rows)


def _empty(query: dns.message.Message, rcode: dns.rcode.Rcode,
           recursion: bool = False) -> dns.message.Message:
    response = dns.message.make_response(query)
    response.set_rcode(rcode)
    if recursion:
        response.flags |= dns.flags.RA
    return response


def _to_wire(query: dns.message.Message, response: dns.message.Message) -> bytes:
    size = max(query.payload, PLAIN_UDP_SIZE) if query.edns >= 0 else PLAIN_UDP_SIZE
    return response.to_wire(max_size=size, prefer_truncation=True)


def _frame(server: dns_model.DnsServer, eth_dst: str, ip_dst: str, port: int,
           payload: bytes) -> bytes:
    frame = packet.Packet()
    frame.add_protocol(ethernet.ethernet(dst=eth_dst, src=server.mac, ethertype=ETH_IPV4))
    frame.add_protocol(ipv4.ipv4(src=server.ipv4, dst=ip_dst, proto=IP_PROTO_UDP, ttl=64))
    frame.add_protocol(udp.udp(src_port=UDP_PORT_DNS, dst_port=port))
    frame.add_protocol(payload)
    frame.serialize()
    return bytes(frame.data)


FEATURE = Feature(
    name="dns",
    kinds=frozenset({KIND_DNS}),
    owners={"interface": interface_flows},
    dirty=dirty,
    packet_in=answer,
)
