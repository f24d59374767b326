"""Interfaces. Their rows are answered in the API's shape, with mac and ip leases."""

from __future__ import annotations

from sqlalchemy import select

from vnet import models as m
from vnet.errors import conflict, invalid
from vnet.interface_rows import deleted_interface_row, interface_row, new_interface_row
from vnet.registry import INTERFACE_MODES
from vnet.serialize import Row
from vnmgr.handlers.bindings import settle
from vnmgr.handlers.filters import delete_filters
from vnmgr.handlers.leases import new_ip_lease, new_mac_lease
from vnmgr.handlers.router_ports import check_route_translation, keep_router_port
from vnmgr.handlers.services import refuse_if_serving
from vnmgr.handlers.translations import delete_translations
from vnmgr.handlers.tx import Tx, apply_booleans, apply_text, handler
from vnmgr.handlers.vifs import check_filtering_flags, keep_vif
from vnmgr.params import Params

# The interface's boolean fields, each false by default.
FLAGS = ("enable_routing", "ingress_filtering_enabled", "enable_filtering",
         "enable_route_translation")


def check_port_name(tx: Tx, interface: m.Interface) -> None:
    """raises ApiError(409, "port_name") when another interface of the same owner
    datapath has this port_name: a vna binds ports by name, and two interfaces on one
    name would both claim one port."""
    if interface.owner_datapath_id is None or interface.port_name is None:
        return
    other = tx.session.scalar(select(m.Interface).where(
        m.Interface.owner_datapath_id == interface.owner_datapath_id,
        m.Interface.port_name == interface.port_name, m.Interface.id != interface.id))
    if other is not None:
        raise conflict("port_name", f"port_name {interface.port_name} is already {other.uuid}'s "
                                    "on this datapath")


@handler("create", "interfaces")
def create_interface(tx: Tx, _uuid: str | None, params: Params) -> Row:
    """With one mac lease and, given network_uuid, one ip lease on it; raises
    ApiError(422, "network_uuid") for ipv4_address without network_uuid, and see
    check_port_name."""
    owner = tx.ref(m.Datapath, params, "owner_datapath_uuid", required=False)
    network = tx.ref(m.Network, params, "network_uuid", required=False)
    if network is None and params.has("ipv4_address"):
        raise invalid("network_uuid", "network_uuid is required with ipv4_address")
    interface = m.Interface(uuid=tx.new_uuid("interfaces", params),
                            display_name=params.text("display_name"),
                            mode=params.choice("mode", INTERFACE_MODES, "vif"),
                            owner_datapath_id=owner.id if owner else None,
                            port_name=params.text("port_name"),
                            **{flag: params.boolean(flag, False) for flag in FLAGS})
    check_port_name(tx, interface)
    check_filtering_flags(interface, params)
    check_route_translation(interface, params)
    tx.changes.add(interface)
    mac_lease = new_mac_lease(tx, interface, params)
    if network is None:
        return new_interface_row(tx.session, interface, [mac_lease], [], {})
    ip_lease = new_ip_lease(tx, interface, network, params, mac_lease)
    return new_interface_row(tx.session, interface, [mac_lease], [ip_lease],
                             {network.id: network.uuid})


@handler("update", "interfaces")
def update_interface(tx: Tx, uuid: str | None, params: Params) -> Row:
    """An empty owner_datapath_uuid or port_name clears it; errors: see check_port_name,
    router_ports.keep_router_port and check_route_translation, and vifs.keep_vif."""
    interface = tx.get(m.Interface, uuid)
    apply_text(interface, params, "display_name", "port_name")
    if params.has("owner_datapath_uuid"):
        interface.owner_datapath_id = tx.ref(m.Datapath, params, "owner_datapath_uuid").id
    elif params.clears("owner_datapath_uuid"):
        interface.owner_datapath_id = None
    apply_booleans(interface, params, *FLAGS)
    if params.has("mode"):
        interface.mode = params.choice("mode", INTERFACE_MODES)
    check_port_name(tx, interface)
    keep_router_port(tx, interface)
    keep_vif(tx, interface)
    check_filtering_flags(interface, params)
    check_route_translation(interface, params)
    if interface.mode != "simulated":
        refuse_if_serving(tx, interface, "mode", f"mode {interface.mode}")
    tx.changes.touch(interface)
    settle(tx, interface)  # a new owner refuses or accepts the existing claims
    return interface_row(tx.session, interface)


@handler("delete", "interfaces")
def delete_interface(tx: Tx, uuid: str | None, _params: Params) -> Row:
    """Takes its leases, security-group joins, filters (with their static entries) and
    translations (with their static addresses) along; raises ApiError(409, None) while
    routes, network services or datapath joins use it."""
    interface = tx.get(m.Interface, uuid)
    tx.refuse_if_used(interface.uuid, {
        "routes": (m.Route, m.Route.interface_id == interface.id),
        "network services": (m.NetworkService, m.NetworkService.interface_id == interface.id),
        "datapath networks": (m.DatapathNetwork, m.DatapathNetwork.interface_id == interface.id),
        "datapath route links": (m.DatapathRouteLink,
                                 m.DatapathRouteLink.interface_id == interface.id),
    })
    delete_translations(tx, m.Translation.interface_id == interface.id)
    for model in (m.IpLease, m.MacLease, m.InterfaceSecurityGroup, m.ActiveInterface):
        tx.delete_where(model, model.interface_id == interface.id)
    delete_filters(tx, m.Filter.interface_id == interface.id)
    return deleted_interface_row(tx.changes.delete(interface))
