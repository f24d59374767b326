"""L2_LOOKUP: (network, eth_dst) -> where the frame goes.

Local vifs get an output; remote vifs on virtual networks get the transport
encapsulation toward their datapath, but only for frames that did not come from the
underlay (those are delivered locally or dropped - no hairpin through this host).
Virtual networks never flood; physical networks are plain bridged segments.
"""

from __future__ import annotations

from vna.features.common import interface_id, local_vif, mac_on_networks, vif_addresses
from vna.flows import Action, Flow, make_match
from vna.pipeline import PHYSICAL, Kind, Prio, Table, on_network, on_network_from
from vna.view import View


def interface_flows(view: View, interface_uuid: str) -> list[Flow]:
    if view.is_local(interface_uuid):
        return _local(view, interface_uuid)
    return _remote(view, interface_uuid)


def _local(view: View, interface_uuid: str) -> list[Flow]:
    vif = local_vif(view, interface_uuid)
    if vif is None:
        return []
    return [
        Flow(
            Table.L2_LOOKUP,
            Prio.NORMAL,
            make_match(metadata=on_network(view.network_id(network)), eth_dst=mac),
            (("output", vif.ofport),),
            kind=Kind.L2_IFACE,
            obj_id=vif.interface_id,
        )
        for mac, (network, _ips) in sorted(vif.macs.items())
    ]


def _remote(view: View, interface_uuid: str) -> list[Flow]:
    peer = view.host_datapath(interface_uuid)
    if peer is None:
        return []
    flows = []
    for network, mac in mac_on_networks(vif_addresses(view, interface_uuid)):
        actions = transport_actions(view, peer, network)
        if actions is None:
            continue
        nid = view.network_id(network)
        flows.append(
            Flow(
                Table.L2_LOOKUP,
                Prio.NORMAL,
                make_match(metadata=on_network_from(nid, 0), eth_dst=mac),
                actions,
                kind=Kind.L2_IFACE,
                obj_id=interface_id(view, interface_uuid),
            )
        )
    return flows


def transport_actions(view: View, peer: str, network_uuid: str) -> tuple[Action, ...] | None:
    """How a frame on a virtual network reaches datapath `peer`; None if it cannot."""
    binding = view.binding
    if binding.transport == "tunnel":
        peer_ip = view.underlay_ip(peer)
        if peer_ip is None or binding.tunnel_ofport is None:
            return None
        return (
            ("set_field", "tunnel_id", int(view.network(network_uuid)["segment_id"])),
            ("set_field", "tun_ipv4_dst", peer_ip),
            ("output", binding.tunnel_ofport),
        )
    mine, theirs = view.my_dpn(network_uuid), view.dpn(peer, network_uuid)
    port = view.underlay_port(network_uuid)
    if mine is None or theirs is None or port is None:
        return None
    # mac2mac: the datapath_network MACs identify (datapath, network) on the underlay
    # segment; the receiver restores the real MACs from the IP header (RX_* tables).
    return (
        ("set_field", "eth_src", mine["broadcast_mac_address"].lower()),
        ("set_field", "eth_dst", theirs["broadcast_mac_address"].lower()),
        ("output", port),
    )


def network_flows(view: View, network_uuid: str) -> list[Flow]:
    """Physical networks: flood unknown/broadcast to local ports and the physical port."""
    if view.network(network_uuid) is None or view.is_virtual(network_uuid):
        return []
    nid = view.network_id(network_uuid)
    local = sorted(
        {
            vif.ofport
            for iface in view.hosted_on(view.binding.datapath_uuid)
            if (vif := local_vif(view, iface)) is not None
            and any(net == network_uuid for net, _ips in vif.macs.values())
        }
    )
    physical = view.physical_port(network_uuid)
    to_local = tuple(("output", p) for p in local)
    to_all = to_local + ((("output", physical),) if physical is not None else ())
    flows = []
    for priority, origin, actions in (
        (Prio.PHYS_FLOOD_FROM_PORT, PHYSICAL, to_local),
        (Prio.PHYS_FLOOD_ANY, 0, to_all),
    ):
        if actions:
            flows.append(
                Flow(
                    Table.L2_LOOKUP,
                    priority,
                    make_match(metadata=on_network_from(nid, origin)),
                    actions,
                    kind=Kind.L2_NETWORK,
                    obj_id=nid,
                )
            )
    return flows
