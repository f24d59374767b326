"""A test-only feature that punts and answers: UDP echo (RFC 862) from the controller.

It punts UDP to port 7 from a local vif in the PUNT stage (through the vif's meter) and
answers with the datagram sent back, built with os_ken.lib.packet.  The unit tests
(test_vna_punt.py) and the e2e test of the packet-in path with a real switch
(tests/e2e/test_punt.py, which loads it into a vna through
tests/e2e/echo_site/sitecustomize.py) use it.  Imports nothing that binds the feature
registry (vna.desired), so it can be registered before the vna starts.
"""

from __future__ import annotations

from os_ken.lib.packet import ethernet, ipv4, packet, udp

from vna import deps
from vna.actions import IN_PORT
from vna.feature import Feature
from vna.features.common import local_vif
from vna.flows import Flow, make_match
from vna.pipeline import ETH_IPV4, Prio, Table
from vna.punt import PacketIn, PacketOut, punt_actions
from vna.view import View

KIND_ECHO = 0xF7
ECHO_PORT = 7


def echo_flows(view: View, interface_uuid: str) -> list[Flow]:
    vif = local_vif(view, interface_uuid)
    if vif is None:
        return []
    match = make_match(in_port=vif.ofport, eth_type=ETH_IPV4, ip_proto=17, udp_dst=ECHO_PORT)
    return [Flow(Table.PUNT, Prio.NORMAL, match, punt_actions(vif.ofport), kind=KIND_ECHO,
                 obj_id=vif.interface_id)]


def echo_answer(view: View, packet_in: PacketIn) -> list[PacketOut]:
    request = packet.Packet(packet_in.data)
    eth = request.get_protocol(ethernet.ethernet)
    ip = request.get_protocol(ipv4.ipv4)
    datagram = request.get_protocol(udp.udp)
    reply = packet.Packet()
    reply.add_protocol(ethernet.ethernet(dst=eth.src, src=eth.dst, ethertype=ETH_IPV4))
    reply.add_protocol(ipv4.ipv4(src=ip.dst, dst=ip.src, proto=17, ttl=64))
    reply.add_protocol(udp.udp(src_port=datagram.dst_port, dst_port=datagram.src_port))
    reply.add_protocol(request.protocols[-1])  # the payload
    reply.serialize()
    return [PacketOut(IN_PORT, bytes(reply.data))]


ECHO = Feature("echo", frozenset({KIND_ECHO}), {"interface": echo_flows},
               dirty=deps.own_interface, packet_in=echo_answer)
