"""ARP: answer, on the requester's own datapath, every request for an address the model
knows on a virtual network (vif addresses and simulated interfaces such as router
gateways).  Nothing else ARP crosses a virtual network."""

from __future__ import annotations

from vna.features.common import interface_id
from vna.flows import Flow, make_match
from vna.pipeline import ARP_REPLY, ARP_REQUEST, ETH_ARP, Kind, Prio, Table, on_network
from vna.view import Address, View

ANSWERED_MODES = ("vif", "simulated")


def interface_flows(view: View, interface_uuid: str) -> list[Flow]:
    iface = view.interface(interface_uuid)
    if iface is None or iface.get("mode") not in ANSWERED_MODES:
        return []
    obj = interface_id(view, interface_uuid)
    return [
        _responder(view, addr, obj)
        for addr in view.addresses_of(interface_uuid)
        if view.is_virtual(addr.network_uuid)
    ]


def _responder(view: View, addr: Address, obj: int) -> Flow:
    match = make_match(
        metadata=on_network(view.network_id(addr.network_uuid)),
        eth_type=ETH_ARP,
        arp_op=ARP_REQUEST,
        arp_tpa=addr.ipv4,
    )
    # Turn the request into the reply in place and bounce it back.
    actions = (
        ("move", "eth_src", "eth_dst", 48),
        ("set_field", "eth_src", addr.mac),
        ("set_field", "arp_op", ARP_REPLY),
        ("move", "arp_sha", "arp_tha", 48),
        ("move", "arp_spa", "arp_tpa", 32),
        ("set_field", "arp_sha", addr.mac),
        ("set_field", "arp_spa", addr.ipv4),
        ("output", "IN_PORT"),
    )
    return Flow(Table.ARP, Prio.NORMAL, match, actions, kind=Kind.ARP, obj_id=obj)


def network_flows(view: View, network_uuid: str) -> list[Flow]:
    """Physical networks keep real ARP: let it through to L2 (flooding)."""
    if view.network(network_uuid) is None or view.is_virtual(network_uuid):
        return []
    nid = view.network_id(network_uuid)
    return [
        Flow(
            Table.ARP,
            Prio.PHYS_ARP,
            make_match(metadata=on_network(nid), eth_type=ETH_ARP),
            goto=Table.L2_LOOKUP,
            kind=Kind.ARP_NETWORK,
            obj_id=nid,
        )
    ]
