"""CLASSIFY for local vifs: (in_port, eth_src) -> which network a VM's frame is on.

Matching the MAC here is the MAC half of port security: an unknown source MAC never gets
a network.  The underlay and physical ports are classified by the transport and physical
features.
"""

from __future__ import annotations

from vna import deps
from vna.feature import Feature
from vna.features.common import local_vif
from vna.flows import Flow, make_match
from vna.pipeline import Prio, Table, classify_to
from vna.view import View

KIND_IFACE = 0x10  # obj interfaces.id


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
            goto=Table.PUNT,
            kind=KIND_IFACE,
            obj_id=vif.interface_id,
        )
        for mac, (network, _ips) in sorted(vif.macs.items())
    ]


FEATURE = Feature(
    name="classifier",
    kinds=frozenset({KIND_IFACE}),
    owners={"interface": interface_flows},
    dirty=deps.own_interface,
)
