"""ARP: answer, on the requester's own datapath, every request for an address the model
knows on a virtual network (vif addresses and simulated interfaces such as router
gateways).  Nothing else ARP crosses a virtual network."""

from __future__ import annotations

from vna import deps
from vna.actions import IN_PORT, Move, Output, SetField
from vna.feature import Feature
from vna.features.common import interface_id
from vna.flows import Flow, make_match
from vna.pipeline import ARP_REPLY, ARP_REQUEST, ETH_ARP, Prio, Table, on_network
from vna.view import Address, View

KIND_IFACE = 0x30  # obj interfaces.id: responders
KIND_CATCH = 0x32  # obj 0: other ARP on virtual networks

ANSWERED_MODES = ("vif", "simulated")


def interface_flows(view: View, interface_uuid: str) -> list[Flow]:
    iface = view.interface(interface_uuid)
    if iface is None or iface.get("mode") not in ANSWERED_MODES:
        return []
    if iface.get("mode") == "vif" and view.host_datapath(interface_uuid) is None:
        return []  # bound nowhere: its address must look unreachable
    obj = interface_id(view, interface_uuid)
    return [
        responder(view, addr, obj)
        for addr in view.addresses_of(interface_uuid)
        if view.is_virtual(addr.network_uuid)
    ]


def responder(view: View, addr: Address, obj: int, kind: int = KIND_IFACE) -> Flow:
    """The ARP table flow answering requests for `addr` on its network out of IN_PORT."""
    match = make_match(
        metadata=on_network(view.network_id(addr.network_uuid)),
        eth_type=ETH_ARP,
        arp_op=ARP_REQUEST,
        arp_tpa=addr.ipv4,
    )
    # Turn the request into the reply in place and bounce it back.
    actions = (
        Move("eth_src", "eth_dst", 48),
        SetField("eth_src", addr.mac),
        SetField("arp_op", ARP_REPLY),
        Move("arp_sha", "arp_tha", 48),
        Move("arp_spa", "arp_tpa", 32),
        SetField("arp_sha", addr.mac),
        SetField("arp_spa", addr.ipv4),
        Output(IN_PORT),
    )
    return Flow(Table.ARP, Prio.NORMAL, match, actions, kind=kind, obj_id=obj)


def datapath_flows(view: View) -> list[Flow]:
    """Virtual networks answer ARP themselves and never let other ARP through; physical
    networks override this per network (vna.features.physical)."""
    del view
    return [Flow(Table.ARP, Prio.CATCH, make_match(eth_type=ETH_ARP), kind=KIND_CATCH)]


FEATURE = Feature(
    name="arp_responder",
    kinds=frozenset({KIND_IFACE, KIND_CATCH}),
    owners={"interface": interface_flows, "datapath": datapath_flows},
    dirty=deps.own_interface,
)
