"""ANTISPOOF (port security): a local vif may only send IPv4 from its leased addresses
and ARP whose sender fields are its own.  The MAC itself was already checked by
CLASSIFY."""

from __future__ import annotations

from vna import deps
from vna.feature import Feature
from vna.features.common import local_vif
from vna.flows import Flow, make_match
from vna.pipeline import ETH_ARP, ETH_IPV4, Prio, Table
from vna.view import View

KIND_IFACE = 0x20  # obj interfaces.id


def interface_flows(view: View, interface_uuid: str) -> list[Flow]:
    vif = local_vif(view, interface_uuid)
    if vif is None:
        return []
    flows = []
    for mac, (_network, ips) in sorted(vif.macs.items()):
        for ip in ips:
            source = {"in_port": vif.ofport, "eth_src": mac}
            for match in (
                make_match(source, eth_type=ETH_IPV4, ipv4_src=ip),
                make_match(source, eth_type=ETH_ARP, arp_sha=mac, arp_spa=ip),
            ):
                flows.append(
                    Flow(
                        Table.ANTISPOOF,
                        Prio.NORMAL,
                        match,
                        goto=Table.FROM_VM_CT,
                        kind=KIND_IFACE,
                        obj_id=vif.interface_id,
                    )
                )
    return flows


FEATURE = Feature(
    name="antispoof",
    kinds=frozenset({KIND_IFACE}),
    owners={"interface": interface_flows},
    dirty=deps.own_interface,
)
