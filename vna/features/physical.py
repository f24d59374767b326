"""Physical networks: plain bridged segments reached through a host port.

CLASSIFY: the network's host port (only an explicit datapath_network interface; if
several physical networks name one host interface, the lowest network id owns it) ->
metadata network|PHYSICAL -> L2_LOOKUP.  ARP: real ARP passes to L2_LOOKUP.  Flooding:
an unknown or broadcast destination sets outport FLOOD in L2_LOOKUP; OUTPUT sends it to
the local ports of the network, plus the physical port unless it came from there.
Known local MACs are still delivered directly (vna.features.l2).
"""

from __future__ import annotations

from vna import deps
from vna.actions import Output
from vna.feature import Feature, OwnerKey
from vna.features.common import local_vif, to_outport
from vna.flows import Flow, make_match
from vna.modelstore import Change
from vna.pipeline import (
    ETH_ARP,
    OUTPORT_FLOOD,
    PHYSICAL,
    REG_OUTPORT,
    Prio,
    Table,
    classify_to,
    on_network,
    on_network_from,
)
from vna.view import View

KIND_INGRESS = 0x12  # obj networks.id
KIND_ARP = 0x31  # obj networks.id
KIND_FLOOD = 0x41  # obj networks.id


def network_flows(view: View, network_uuid: str) -> list[Flow]:
    if view.network(network_uuid) is None or view.is_virtual(network_uuid):
        return []
    nid = view.network_id(network_uuid)
    flows = [
        Flow(
            Table.ARP,
            Prio.PHYS_ARP,
            make_match(metadata=on_network(nid), eth_type=ETH_ARP),
            goto=Table.L2_LOOKUP,
            kind=KIND_ARP,
            obj_id=nid,
        )
    ]
    ingress = _ingress(view, network_uuid, nid)
    return flows + ([ingress] if ingress else []) + _flooding(view, network_uuid, nid)


def _ingress(view: View, network_uuid: str, nid: int) -> Flow | None:
    port = view.physical_port(network_uuid)
    if port is None or port_owner(view, network_uuid) != network_uuid:
        return None
    return Flow(
        Table.CLASSIFY,
        Prio.PHYS_PORT,
        make_match(in_port=port),
        metadata=classify_to(nid, PHYSICAL),
        goto=Table.L2_LOOKUP,
        kind=KIND_INGRESS,
        obj_id=nid,
    )


def port_owner(view: View, network_uuid: str) -> str | None:
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


def _flooding(view: View, network_uuid: str, nid: int) -> list[Flow]:
    local = sorted(
        {
            vif.ofport
            for iface in view.hosted_on(view.binding.datapath_uuid)
            if (vif := local_vif(view, iface)) is not None
            and any(net == network_uuid for net, _ips in vif.macs.values())
        }
    )
    physical = view.physical_port(network_uuid)
    to_local = tuple(Output(p) for p in local)
    to_all = to_local + ((Output(physical),) if physical is not None else ())
    flood = {REG_OUTPORT: OUTPORT_FLOOD}
    flows = [
        Flow(
            Table.OUTPUT,
            priority,
            make_match(flood, metadata=on_network_from(nid, origin)),
            actions,
            kind=KIND_FLOOD,
            obj_id=nid,
        )
        for priority, origin, actions in (
            (Prio.PHYS_FLOOD_FROM_PORT, PHYSICAL, to_local),
            (Prio.PHYS_FLOOD_ANY, 0, to_all),
        )
        if actions
    ]
    if flows:
        decide = {"metadata": on_network(nid)}
        flows.append(
            to_outport(Table.L2_LOOKUP, Prio.PHYS_FLOOD_ANY, decide, OUTPORT_FLOOD, KIND_FLOOD, nid)
        )
    return flows


def dirty(change: Change, view: View) -> set[OwnerKey]:
    """Reads: the network row, its datapath_network on this datapath and the other
    networks naming the same host interface, the ofports of that interface and of the
    local vifs leasing on the network."""
    out: set[OwnerKey] = set()
    for iface in deps.changed_interfaces(change):
        if view.is_local(iface):
            out |= deps.networks(view.networks_of(iface))
        out |= deps.networks_using(view, iface)
    if change.resource == "networks":
        out |= {("network", change.uuid)} | deps.sharing_host_port(view, change.uuid)
    elif change.resource == "datapath_networks":
        for row in deps.rows(change):
            out |= {("network", row["network_uuid"])}
            out |= deps.sharing_host_port(view, row["network_uuid"])
            if row.get("interface_uuid"):
                out |= deps.networks_using(view, row["interface_uuid"])
    return out


FEATURE = Feature(
    name="physical",
    kinds=frozenset({KIND_INGRESS, KIND_ARP, KIND_FLOOD}),
    owners={"network": network_flows},
    dirty=dirty,
)
