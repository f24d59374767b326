"""CLASSIFY: which network a packet is on and where it came from (metadata)."""

from __future__ import annotations

from vna.features.common import local_vif
from vna.flows import Flow, make_match
from vna.pipeline import PHYSICAL, REMOTE, Kind, Prio, Table, classify_to
from vna.view import View


def interface_flows(view: View, interface_uuid: str) -> list[Flow]:
    vif = local_vif(view, interface_uuid)
    if vif is None:
        return []
    return [
        Flow(
            Table.CLASSIFY,
            Prio.NORMAL,
            make_match(in_port=vif.ofport, eth_src=mac),
            metadata=classify_to(view.network_id(network)),
            goto=Table.ANTISPOOF,
            kind=Kind.CLASSIFY_IFACE,
            obj_id=vif.interface_id,
        )
        for mac, (network, _ips) in sorted(vif.macs.items())
    ]


def network_flows(view: View, network_uuid: str) -> list[Flow]:
    net = view.network(network_uuid)
    if net is None:
        return []
    if view.is_virtual(network_uuid):
        flow = _underlay_ingress(view, network_uuid)
    else:
        flow = _physical_ingress(view, network_uuid)
    return [flow] if flow else []


def _underlay_ingress(view: View, network_uuid: str) -> Flow | None:
    nid = view.network_id(network_uuid)
    binding = view.binding
    if binding.transport == "tunnel":
        if binding.tunnel_ofport is None:
            return None
        segment = int(view.network(network_uuid)["segment_id"])
        match = make_match(in_port=binding.tunnel_ofport, tunnel_id=segment)
        # Tunnelled packets are already addressed to their final MAC (routing happened
        # at the source), so straight to L2.
        goto = Table.L2_LOOKUP
    else:
        dpn = view.my_dpn(network_uuid)
        port = view.underlay_port(network_uuid)
        if dpn is None or port is None:
            return None
        match = make_match(in_port=port, eth_dst=dpn["broadcast_mac_address"].lower())
        goto = Table.RX_DST
    return Flow(
        Table.CLASSIFY,
        Prio.NORMAL,
        match,
        metadata=classify_to(nid, REMOTE),
        goto=goto,
        kind=Kind.CLASSIFY_NETWORK,
        obj_id=nid,
    )


def _physical_ingress(view: View, network_uuid: str) -> Flow | None:
    port = view.physical_port(network_uuid)
    if port is None or _port_owner(view, network_uuid) != network_uuid:
        return None
    nid = view.network_id(network_uuid)
    return Flow(
        Table.CLASSIFY,
        Prio.PHYS_PORT,
        make_match(in_port=port),
        metadata=classify_to(nid, PHYSICAL),
        goto=Table.L2_LOOKUP,
        kind=Kind.CLASSIFY_NETWORK,
        obj_id=nid,
    )


def _port_owner(view: View, network_uuid: str) -> str | None:
    """Untagged host ports carry one physical network; if several claim the same host
    interface the lowest network id gets it, so two owners never emit the same match."""
    iface = view.my_dpn(network_uuid)["interface_uuid"]
    claimants = [
        dpn["network_uuid"]
        for dpn in view.dpns_using_interface(iface)
        if dpn["datapath_uuid"] == view.binding.datapath_uuid
        and view.network(dpn["network_uuid"]) is not None
        and not view.is_virtual(dpn["network_uuid"])
    ]
    return min(claimants, key=view.network_id, default=None)
