"""Small helpers shared by feature modules: which interfaces a feature applies to."""

from __future__ import annotations

from dataclasses import dataclass

from vna.actions import SetField
from vna.flows import Flow, make_match
from vna.pipeline import REG_OUTPORT, Table
from vna.view import Address, View


@dataclass(frozen=True)
class LocalVif:
    """A vif attached to this bridge: its ofport and, per MAC, the one network that MAC
    is classified into with the addresses it may use there."""

    interface_id: int
    ofport: int
    macs: dict[str, tuple[str, list[str]]]  # mac -> (network uuid, ipv4 addresses)


def is_vif(view: View, interface_uuid: str) -> bool:
    iface = view.interface(interface_uuid)
    return iface is not None and iface.get("mode") == "vif"


def interface_id(view: View, interface_uuid: str) -> int:
    return int(view.interface(interface_uuid)["id"])


def local_vif(view: View, interface_uuid: str) -> LocalVif | None:
    if not is_vif(view, interface_uuid):
        return None
    port = view.ofport(interface_uuid)
    if port is None:
        return None
    macs: dict[str, tuple[str, list[str]]] = {}
    # A MAC is classified into exactly one network; if leases put it on several, the
    # lowest network id wins and the others' addresses are not usable from that MAC.
    by_network_id = sorted(
        view.addresses_of(interface_uuid), key=lambda a: (view.network_id(a.network_uuid), a.ipv4)
    )
    for addr in by_network_id:
        network, ips = macs.setdefault(addr.mac, (addr.network_uuid, []))
        if network == addr.network_uuid and addr.ipv4 not in ips:
            ips.append(addr.ipv4)
    return LocalVif(interface_id(view, interface_uuid), port, macs)


def vif_addresses(view: View, interface_uuid: str, virtual_only: bool = True) -> list[Address]:
    """Addresses of a vif bound somewhere (local or remote), optionally only on virtual
    networks.  A vif bound nowhere has none: nobody can deliver to it, so nobody resolves
    or routes to it (it looks unreachable instead of swallowing traffic)."""
    if not is_vif(view, interface_uuid) or view.host_datapath(interface_uuid) is None:
        return []
    return [
        a
        for a in view.addresses_of(interface_uuid)
        if not virtual_only or view.is_virtual(a.network_uuid)
    ]


def mac_on_networks(addresses: list[Address]) -> list[tuple[str, str]]:
    """Distinct (network uuid, mac) pairs, in a stable order."""
    return sorted({(a.network_uuid, a.mac) for a in addresses})


def to_outport(table: Table, priority: int, match: dict, outport: int, kind: int, obj: int
               ) -> Flow:
    """An L2_LOOKUP-style decision: reg15 := outport, on to the egress stages."""
    return Flow(
        table,
        priority,
        make_match(match),
        (SetField(REG_OUTPORT, outport),),
        goto=Table.TO_VM_CT,
        kind=kind,
        obj_id=obj,
    )
