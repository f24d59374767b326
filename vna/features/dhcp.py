"""DHCP answered by the vna where the VM is, from the model (RFC 2131, RFC 2132).

A network with a `dhcp` network service (a simulated interface whose lease on the
network is the server's MAC and IP) gets, per local vif MAC classified into it, one PUNT
flow: `in_port, metadata=network, eth_src=MAC, udp 68 -> 67` -> the vif's meter and the
controller.  PUNT runs before ANTISPOOF, so DISCOVERs from 0.0.0.0 reach it, and
unicast renewals to the server's address (from the leased address) take the same flow.

The handler answers from the current View: the client's address is its IP lease on
that network (vna.dhcp_lease); there is no pool, nothing to allocate and nothing to free.

* DISCOVER -> OFFER of the lease; no lease on the network -> no answer.
* REQUEST (SELECTING with our server id, INIT-REBOOT, RENEWING, REBINDING) for the leased
  address -> ACK; for another address -> NAK; SELECTING another server -> no answer.
* INFORM -> ACK without yiaddr and without lease times (RFC 2131 3.4).
* DECLINE, RELEASE -> logged; the address stays the model's lease.

Replies (RFC 2131 4.1, no relays): from the service's MAC and IP to the client's MAC,
IP destination ciaddr if set, else 255.255.255.255 for a NAK or when the client set the
broadcast flag, else yiaddr; a packet-out to the vif's port.

Owner: the interface (the vif's port and meter).  The flows only depend on whether the
MAC's network has a dhcp service, so the rule is the vif's own one plus, for a change of
a network service or of its interface (row, leases), every interface on the networks
that interface leases on.  Options are read at answer time, so router, dns, domain and
mtu changes need no flow change.
"""

from __future__ import annotations

import ipaddress
import logging
import struct

from os_ken.lib import addrconv
from os_ken.lib.packet import dhcp, ethernet, ipv4, packet, udp

from vna import deps
from vna.actions import IN_PORT
from vna.dhcp_lease import Offer, dhcp_server, networks_served_by, offer_for
from vna.feature import Feature, OwnerKey
from vna.features.common import local_vif
from vna.flows import Flow, make_match
from vna.modelstore import Change
from vna.pipeline import ETH_IPV4, Prio, Table, on_network
from vna.punt import PacketIn, PacketOut, punt_actions
from vna.view import View

log = logging.getLogger("vna.dhcp")

KIND_DHCP = 0x90  # obj interfaces.id (the local vif whose DHCP requests punt)
IP_PROTO_UDP = 17
CLIENT_PORT, SERVER_PORT = 68, 67
BROADCAST_FLAG = 0x8000
BROADCAST_IP = "255.255.255.255"
ZERO_IP = "0.0.0.0"
BOOTP_MIN_LEN = 300  # RFC 1542 2.1: the BOOTP message, options included, padded to this

# Message types (option 53, RFC 2132 9.6); os-ken names only 1, 2, 3 and 5.
DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE, INFORM = range(1, 9)
MESSAGE_NAMES = {DISCOVER: "DISCOVER", OFFER: "OFFER", REQUEST: "REQUEST", DECLINE: "DECLINE",
                 ACK: "ACK", NAK: "NAK", RELEASE: "RELEASE", INFORM: "INFORM"}


# ------------------------------------------------------------------ flows

def _served_macs(view: View, interface_uuid: str) -> tuple[int, list[tuple[str, str]]] | None:
    """(ofport, [(mac, network)]) of a local vif's MACs whose network has a dhcp
    service; None if the vif is not local."""
    vif = local_vif(view, interface_uuid)
    if vif is None:
        return None
    served = [(mac, network) for mac, (network, ips) in sorted(vif.macs.items())
              if ips and view.is_virtual(network) and dhcp_server(view, network) is not None]
    return vif.ofport, served


def interface_flows(view: View, interface_uuid: str) -> list[Flow]:
    local = _served_macs(view, interface_uuid)
    if local is None:
        return []
    ofport, served = local
    obj_id = int(view.interface(interface_uuid)["id"])
    return [
        Flow(
            Table.PUNT,
            Prio.NORMAL,
            make_match(in_port=ofport, metadata=on_network(view.network_id(network)),
                       eth_src=mac, eth_type=ETH_IPV4, ip_proto=IP_PROTO_UDP,
                       udp_src=CLIENT_PORT, udp_dst=SERVER_PORT),
            punt_actions(ofport),
            kind=KIND_DHCP,
            obj_id=obj_id,
        )
        for mac, network in served
    ]


def dirty(change: Change, view: View) -> set[OwnerKey]:
    """The vif's own rule, plus every interface on the networks of a service whose row,
    interface or leases changed (a dhcp service appearing or going away)."""
    out = deps.own_interface(change, view)
    service_ifaces = deps.changed_interfaces(change)
    if change.resource == "network_services":
        service_ifaces |= {row["interface_uuid"] for row in deps.rows(change)}
    for iface in service_ifaces:
        networks = (view.networks_of(iface) if change.resource == "network_services"
                    else networks_served_by(view, iface))
        for network in networks:
            out |= deps.interfaces_on(view, network)
    return out


# ------------------------------------------------------------------ the answers

def _option(message: dhcp.dhcp, tag: int) -> bytes | None:
    for opt in message.options.option_list if message.options is not None else ():
        if isinstance(opt, dhcp.option) and opt.tag == tag:
            return bytes(opt.value)
    return None


def _ip_option(message: dhcp.dhcp, tag: int) -> str | None:
    value = _option(message, tag)
    return addrconv.ipv4.bin_to_text(value) if value is not None and len(value) == 4 else None


def _ip(address: str) -> bytes:
    return addrconv.ipv4.text_to_bin(address)


def classless_routes(routes: tuple[tuple[ipaddress.IPv4Network, str], ...]) -> bytes:
    """RFC 3442 option 121 value: per route, the prefix length, the significant octets
    of the destination, then the router."""
    out = b""
    for prefix, router in routes:
        width = prefix.prefixlen
        out += bytes([width]) + prefix.network_address.packed[:(width + 7) // 8] + _ip(router)
    return out


def reply_options(offer: Offer, message_type: int, lease: bool = True) -> list[dhcp.option]:
    """Options of an OFFER/ACK (lease=False: an ACK to INFORM, without lease times) or
    a NAK (message type and server identifier only)."""
    opts = [dhcp.option(tag=dhcp.DHCP_MESSAGE_TYPE_OPT, value=bytes([message_type])),
            dhcp.option(tag=dhcp.DHCP_SERVER_IDENTIFIER_OPT, value=_ip(offer.server.ipv4))]
    if message_type == NAK:
        return opts
    if lease:
        opts += [
            dhcp.option(tag=dhcp.DHCP_IP_ADDR_LEASE_TIME_OPT,
                        value=struct.pack("!I", offer.lease_time)),
            dhcp.option(tag=dhcp.DHCP_RENEWAL_TIME_OPT,
                        value=struct.pack("!I", offer.renewal_time)),
            dhcp.option(tag=dhcp.DHCP_REBINDING_TIME_OPT,
                        value=struct.pack("!I", offer.rebinding_time)),
        ]
    opts.append(dhcp.option(tag=dhcp.DHCP_SUBNET_MASK_OPT, value=_ip(offer.subnet_mask)))
    if offer.router is not None:
        opts.append(dhcp.option(tag=dhcp.DHCP_GATEWAY_ADDR_OPT, value=_ip(offer.router)))
    if offer.dns:
        opts.append(dhcp.option(tag=dhcp.DHCP_DNS_SERVER_ADDR_OPT,
                                value=b"".join(_ip(a) for a in offer.dns)))
    if offer.domain_name:
        opts.append(dhcp.option(tag=dhcp.DHCP_DOMAIN_NAME_OPT,
                                value=offer.domain_name.encode("ascii")))
    opts.append(dhcp.option(tag=dhcp.DHCP_INTERFACE_MTU_OPT, value=struct.pack("!H", offer.mtu)))
    if offer.routes:
        opts.append(dhcp.option(tag=dhcp.DHCP_CLASSLESS_ROUTE_OPT,
                                value=classless_routes(offer.routes)))
    return opts


def _reply(eth: ethernet.ethernet, request: dhcp.dhcp, offer: Offer, message_type: int,
           yiaddr: str, lease: bool = True) -> PacketOut:
    options = reply_options(offer, message_type, lease)
    # RFC 2131 table 3: ciaddr is the request's in an ACK, 0 in an OFFER or NAK
    body = dhcp.dhcp(op=dhcp.DHCP_BOOT_REPLY, chaddr=request.chaddr, xid=request.xid,
                     flags=request.flags, ciaddr=request.ciaddr if message_type == ACK
                     else ZERO_IP, yiaddr=yiaddr, siaddr=ZERO_IP, giaddr=request.giaddr,
                     options=dhcp.options(option_list=options))
    length = len(body.serialize())
    if length < BOOTP_MIN_LEN:  # the end option, then padding (os-ken adds no padding)
        options.append(b"\xff" + bytes(BOOTP_MIN_LEN - length))
    if message_type == NAK:
        dst = BROADCAST_IP
    elif request.ciaddr != ZERO_IP:
        dst = request.ciaddr
    elif request.flags & BROADCAST_FLAG:
        dst = BROADCAST_IP
    else:
        dst = yiaddr
    frame = packet.Packet()
    frame.add_protocol(ethernet.ethernet(dst=eth.src, src=offer.server.mac, ethertype=ETH_IPV4))
    frame.add_protocol(ipv4.ipv4(src=offer.server.ipv4, dst=dst, proto=IP_PROTO_UDP, ttl=64))
    frame.add_protocol(udp.udp(src_port=SERVER_PORT, dst_port=CLIENT_PORT))
    frame.add_protocol(body)
    frame.serialize()
    log.debug("DHCP %s %s -> %s to %s", MESSAGE_NAMES.get(message_type), yiaddr, eth.src, dst)
    return PacketOut(IN_PORT, bytes(frame.data))


def _client(view: View, in_port: int, mac: str) -> tuple[str, list[str]] | None:
    """(network, leased addresses) of a local vif's MAC that entered on in_port."""
    by_port = view.cache.get("dhcp:by_port")
    if by_port is None:  # once per View: the handler must not scan every port per packet
        by_port = view.cache["dhcp:by_port"] = {p: u for u, p in view.binding.ports.items()}
    vif_uuid = by_port.get(in_port)
    vif = local_vif(view, vif_uuid) if vif_uuid is not None else None
    if vif is None or mac not in vif.macs:
        return None
    network, ips = vif.macs[mac]
    net = view.network(network)
    subnet = ipaddress.IPv4Network(f"{net['ipv4_network']}/{net['ipv4_prefix']}", strict=False)
    # an address inside the network's subnet first (others cannot be configured by DHCP)
    return network, sorted(ips, key=lambda a: ipaddress.IPv4Address(a) not in subnet)


def answer(view: View, packet_in: PacketIn) -> list[PacketOut]:
    pkt = packet.Packet(packet_in.data)
    eth = pkt.get_protocol(ethernet.ethernet)
    request = pkt.get_protocol(dhcp.dhcp)
    if eth is None or request is None or request.op != dhcp.DHCP_BOOT_REQUEST:
        return []
    mac = eth.src.lower()
    if not isinstance(request.chaddr, str) or request.chaddr.lower() != mac:
        return []  # relayed or for another hardware address: not ours to answer
    client = _client(view, packet_in.in_port, mac)
    if client is None:
        return []
    network, leased = client
    offer = offer_for(view, network, mac, leased)
    if offer is None:
        return []
    kind = _option(request, dhcp.DHCP_MESSAGE_TYPE_OPT)
    kind = kind[0] if kind else None
    if kind == DISCOVER:
        return [_reply(eth, request, offer, OFFER, offer.yiaddr)]
    if kind == REQUEST:
        server_id = _ip_option(request, dhcp.DHCP_SERVER_IDENTIFIER_OPT)
        if server_id is not None and server_id != offer.server.ipv4:
            return []  # SELECTING another server's offer
        wanted = _ip_option(request, dhcp.DHCP_REQUESTED_IP_ADDR_OPT)
        if wanted is None and request.ciaddr != ZERO_IP:
            wanted = request.ciaddr  # RENEWING / REBINDING
        if wanted is None:
            return []
        if wanted == offer.yiaddr:
            return [_reply(eth, request, offer, ACK, offer.yiaddr)]
        log.info("DHCP NAK to %s on %s: asked for %s, its lease is %s", mac, network,
                 wanted, offer.yiaddr)
        return [_reply(eth, request, offer, NAK, ZERO_IP)]
    if kind == INFORM:
        return [_reply(eth, request, offer, ACK, ZERO_IP, lease=False)]
    if kind in (DECLINE, RELEASE):
        # Addresses are the model's leases: nothing to free or to mark as in use.
        log.info("DHCP %s from %s on %s (%s): the lease stays the model's",
                 MESSAGE_NAMES[kind], mac, network,
                 _ip_option(request, dhcp.DHCP_REQUESTED_IP_ADDR_OPT) or request.ciaddr)
    return []


FEATURE = Feature(
    name="dhcp",
    kinds=frozenset({KIND_DHCP}),
    owners={"interface": interface_flows},
    dirty=dirty,
    packet_in=answer,
)
