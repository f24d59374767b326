"""L2_LOOKUP and local delivery: (network, eth_dst) -> outport, then OUTPUT sends.

L2_LOOKUP only decides: it writes the destination interface's id into the outport
register (reg15) and hands the packet to the egress stages; OUTPUT then sends it.  This
module owns the decision for every vif and the OUTPUT entry of local vifs; the transport
feature owns the OUTPUT entries of remote vifs, the physical feature flooding.

A remote vif is only chosen for frames that did not come from the underlay (those are
delivered locally or dropped - no hairpin through this host).  Virtual networks never
flood.
"""

from __future__ import annotations

from vna import deps
from vna.actions import Output
from vna.feature import Feature
from vna.features.common import (
    interface_id,
    local_vif,
    mac_on_networks,
    to_outport,
    vif_addresses,
)
from vna.flows import Flow, make_match
from vna.pipeline import REG_OUTPORT, Prio, Table, on_network, on_network_from
from vna.view import View

KIND_IFACE = 0x40  # obj interfaces.id: L2_LOOKUP entries
KIND_OUTPUT = 0x42  # obj interfaces.id: OUTPUT of a local vif


def interface_flows(view: View, interface_uuid: str) -> list[Flow]:
    if view.is_local(interface_uuid):
        return _local(view, interface_uuid)
    return _remote(view, interface_uuid)


def _local(view: View, interface_uuid: str) -> list[Flow]:
    vif = local_vif(view, interface_uuid)
    if vif is None:
        return []
    flows = [
        to_outport(
            Table.L2_LOOKUP,
            Prio.NORMAL,
            {"metadata": on_network(view.network_id(network)), "eth_dst": mac},
            vif.interface_id,
            KIND_IFACE,
            vif.interface_id,
        )
        for mac, (network, _ips) in sorted(vif.macs.items())
    ]
    if flows:
        flows.append(
            Flow(
                Table.OUTPUT,
                Prio.NORMAL,
                make_match({REG_OUTPORT: vif.interface_id}),
                (Output(vif.ofport),),
                kind=KIND_OUTPUT,
                obj_id=vif.interface_id,
            )
        )
    return flows


def _remote(view: View, interface_uuid: str) -> list[Flow]:
    if view.host_datapath(interface_uuid) is None:
        return []
    obj = interface_id(view, interface_uuid)
    return [
        to_outport(
            Table.L2_LOOKUP,
            Prio.NORMAL,
            {"metadata": on_network_from(view.network_id(network), 0), "eth_dst": mac},
            obj,
            KIND_IFACE,
            obj,
        )
        for network, mac in mac_on_networks(vif_addresses(view, interface_uuid))
    ]


FEATURE = Feature(
    name="l2",
    kinds=frozenset({KIND_IFACE, KIND_OUTPUT}),
    owners={"interface": interface_flows},
    dirty=deps.own_interface,
)
