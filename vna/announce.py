"""MAC2MAC announcements: make the physical network learn the datapath-network and
datapath-route-link MACs.

With the distributed router, traffic between two datapaths is often asymmetric: a
request routed onto network B is addressed to the destination datapath's MAC on B, but
the reply is routed onto network A and leaves from the other datapath's MAC on A. A
learning switch would never see the first MAC as a source and would flood every such
frame to all hosts. Each vna therefore sends, now and then, one small broadcast frame
from each of those MACs (as hypervisors send gratuitous ARP for VMs).
Receiving datapaths drop it: no flow matches it on the underlay port.
"""

from __future__ import annotations

from vna import route_link_wire as wire
from vna.view import View

ETHERTYPE = 0x88B5  # IEEE 802 local experimental ethertype: never mistaken for traffic
PAYLOAD = b"wakame-vnet datapath network".ljust(46, b"\0")


def _mac_bytes(mac: str) -> bytes:
    return bytes(int(part, 16) for part in mac.split(":"))


def frame(source_mac: str) -> bytes:
    return b"\xff" * 6 + _mac_bytes(source_mac) + ETHERTYPE.to_bytes(2, "big") + PAYLOAD


def announcements(view: View) -> list[tuple[int, bytes]]:
    """(ofport, frame) for every network this datapath joins over a MAC2MAC underlay."""
    if view.binding.transport != "mac2mac":
        return []
    out = []
    for network in view.dpn_networks(view.binding.datapath_uuid):
        dpn = view.my_dpn(network)
        port = view.underlay_port(network)
        if dpn is not None and port is not None and view.is_virtual(network):
            out.append((port, frame(dpn["broadcast_mac_address"])))
    for link in view.uuids("route_links"):  # and each of its datapath_route_link MACs
        row, port = wire.my_dprl(view, link), wire.underlay_port(view, link)
        if row is not None and port is not None:
            out.append((port, frame(wire.mac(row))))
    return sorted(out)
