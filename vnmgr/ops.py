"""Validated writes, one function per (operation, resource).

Each handler runs inside one database transaction (see vnmgr.service); it raises
ApiError on bad input before anything is committed, so a rejected request changes
nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vnet import models as m
from vnet.addr import format_ipv4
from vnet.errors import ApiError, conflict, invalid, not_found
from vnet.registry import INTERFACE_MODES, NETWORK_MODES
from vnet.serialize import Row, serialize
from vnmgr.allocate import allocate_ipv4, allocate_mac, mac_in_use
from vnmgr.changes import ChangeSet
from vnmgr.params import Params


class Tx:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.changes = ChangeSet(session)

    def find(self, model: type[m.Resource], uuid: str | None) -> m.Resource | None:
        if uuid is None:
            return None
        return self.session.scalar(select(model).where(model.uuid == uuid))

    def ref(self, model: type[m.Resource], params: Params, field: str,
            required: bool = True) -> Any:
        uuid = params.text(field, required, max_len=300)
        if uuid is None:
            return None
        obj = self.find(model, uuid)
        if obj is None:
            raise not_found(field, uuid)
        return obj

    def get(self, model: type[m.Resource], uuid: str | None, field: str = "uuid") -> Any:
        obj = self.find(model, uuid)
        if obj is None:
            raise not_found(field, str(uuid))
        return obj

    def exists(self, model: type[m.Resource], *conditions: Any) -> bool:
        return self.session.scalar(select(func.count()).select_from(model).where(*conditions)) > 0

    def new_uuid(self, resource: str, params: Params) -> str:
        uuid = params.new_uuid(resource)
        if self.find(m.MODELS[resource], uuid) is not None:
            raise conflict("uuid", f"{uuid} already exists")
        return uuid

    def unique_mac(self, params: Params, field: str = "mac_address") -> int:
        mac = params.mac(field)
        if mac is None:
            return allocate_mac(self.session)
        if mac & (1 << 40):
            raise invalid(field, f"{field} must be a unicast MAC address")
        if mac_in_use(self.session, mac):
            raise conflict(field, f"{field} {params.raw[field]} is already in use")
        return mac

    def row(self, obj: m.Resource) -> Row:
        return serialize(self.session, obj)

    def refuse_if_used(self, what: str, uses: dict[str, tuple[type[m.Resource], Any]]) -> None:
        for label, (model, condition) in uses.items():
            if self.exists(model, condition):
                raise conflict(None, f"{what} is still used by {label}")


Handler = Callable[[Tx, str | None, Params], Row]
HANDLERS: dict[tuple[str, str], Handler] = {}


def handler(op: str, resource: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[(op, resource)] = fn
        return fn
    return register


def _apply_text(obj: m.Resource, params: Params, *fields: str) -> None:
    for field in fields:
        if params.has(field):
            setattr(obj, field, params.text(field))


# ---------------------------------------------------------------- datapaths

def _dpid(tx: Tx, params: Params, current: m.Datapath | None = None) -> str:
    dpid = f"0x{params.integer('dpid', required=True, high=2**64 - 1):016x}"
    other = tx.session.scalar(select(m.Datapath).where(m.Datapath.dpid == dpid))
    if other is not None and other is not current:
        raise conflict("dpid", f"dpid {dpid} is already used by {other.uuid}")
    return dpid


@handler("create", "datapaths")
def create_datapath(tx: Tx, _uuid: str | None, params: Params) -> Row:
    dp = m.Datapath(uuid=tx.new_uuid("datapaths", params),
                    display_name=params.text("display_name"), dpid=_dpid(tx, params),
                    node_id=params.text("node_id", required=True),
                    is_connected=params.boolean("is_connected", False))
    return tx.row(tx.changes.add(dp))


@handler("update", "datapaths")
def update_datapath(tx: Tx, uuid: str | None, params: Params) -> Row:
    dp = tx.get(m.Datapath, uuid)
    _apply_text(dp, params, "display_name", "node_id")
    if params.has("dpid"):
        dp.dpid = _dpid(tx, params, dp)
    if params.has("is_connected"):
        dp.is_connected = params.boolean("is_connected")
    return tx.row(tx.changes.touch(dp))


@handler("delete", "datapaths")
def delete_datapath(tx: Tx, uuid: str | None, _params: Params) -> Row:
    dp = tx.get(m.Datapath, uuid)
    owned = (m.Interface, m.Interface.owner_datapath_id == dp.id)
    tx.refuse_if_used(dp.uuid, {"interfaces": owned})
    for model in (m.DatapathNetwork, m.DatapathRouteLink):
        for join in tx.session.scalars(select(model).where(model.datapath_id == dp.id)):
            tx.changes.delete(join)
    return tx.changes.delete(dp)


# ---------------------------------------------------------------- networks

def _network_address(params: Params) -> tuple[int, int]:
    text = params.text("ipv4_network", required=True)
    if "/" in text:
        text, _, prefix_text = text.partition("/")
        params.raw.setdefault("ipv4_prefix", prefix_text)
        params.raw["ipv4_network"] = text
    address = params.ipv4("ipv4_network", required=True)
    prefix = params.integer("ipv4_prefix", low=1, high=32)
    prefix = 24 if prefix is None else prefix
    if address & ((1 << (32 - prefix)) - 1):
        raise invalid("ipv4_network", f"{format_ipv4(address)} is not the first address of a "
                                      f"/{prefix} network")
    return address, prefix


@handler("create", "networks")
def create_network(tx: Tx, _uuid: str | None, params: Params) -> Row:
    address, prefix = _network_address(params)
    segment_id = params.integer("segment_id", low=1, high=2**24 - 1)
    if segment_id is not None and tx.exists(m.Network, m.Network.segment_id == segment_id):
        raise conflict("segment_id", f"segment_id {segment_id} is already in use")
    network = m.Network(uuid=tx.new_uuid("networks", params),
                        display_name=params.text("display_name"),
                        ipv4_network=address, ipv4_prefix=prefix,
                        domain_name=params.text("domain_name"),
                        network_mode=params.choice("network_mode", NETWORK_MODES, "virtual"),
                        segment_id=segment_id)
    tx.changes.add(network)
    if network.segment_id is None:
        # The database id is unique and, in practice, small: a ready-made tunnel key.
        network.segment_id = network.id
        if tx.exists(m.Network, m.Network.segment_id == network.id, m.Network.id != network.id):
            highest = tx.session.scalar(select(func.max(m.Network.segment_id))) or 0
            network.segment_id = highest + 1
    return tx.row(tx.changes.touch(network))


@handler("update", "networks")
def update_network(tx: Tx, uuid: str | None, params: Params) -> Row:
    network = tx.get(m.Network, uuid)
    _apply_text(network, params, "display_name", "domain_name")
    for fixed in ("ipv4_network", "ipv4_prefix", "network_mode", "segment_id"):
        if params.has(fixed):
            raise invalid(fixed, f"{fixed} cannot be changed; create a new network")
    return tx.row(tx.changes.touch(network))


@handler("delete", "networks")
def delete_network(tx: Tx, uuid: str | None, _params: Params) -> Row:
    network = tx.get(m.Network, uuid)
    tx.refuse_if_used(network.uuid, {
        "interfaces (ip leases)": (m.IpLease, m.IpLease.network_id == network.id),
        "routes": (m.Route, m.Route.network_id == network.id),
    })
    for join in tx.session.scalars(select(m.DatapathNetwork)
                                   .where(m.DatapathNetwork.network_id == network.id)):
        tx.changes.delete(join)
    return tx.changes.delete(network)


# ---------------------------------------------------------------- leases

def _new_ip_lease(tx: Tx, interface: m.Interface, network: m.Network, params: Params,
                  mac_lease: m.MacLease | None, uuid: str | None = None) -> m.IpLease:
    address = params.ipv4("ipv4_address")
    if address is None:
        address = allocate_ipv4(tx.session, network)
    else:
        first = network.ipv4_network
        last = first + (1 << (32 - network.ipv4_prefix)) - 1
        if not first <= address <= last:
            raise invalid("ipv4_address", f"{format_ipv4(address)} is outside {network.uuid} "
                                          f"({format_ipv4(first)}/{network.ipv4_prefix})")
        if network.ipv4_prefix < 31 and address in (first, last):
            raise invalid("ipv4_address", f"{format_ipv4(address)} is the network or broadcast "
                                          f"address of {network.uuid}")
        if tx.exists(m.IpLease, m.IpLease.network_id == network.id,
                     m.IpLease.ipv4_address == address):
            raise conflict("ipv4_address",
                           f"{format_ipv4(address)} is already leased on {network.uuid}")
    lease = m.IpLease(uuid=uuid or tx.new_uuid("ip_leases", Params({})),
                      interface_id=interface.id,
                      network_id=network.id, ipv4_address=address,
                      mac_lease_id=mac_lease.id if mac_lease else None)
    return tx.changes.add(lease)


def _new_mac_lease(tx: Tx, interface: m.Interface, params: Params) -> m.MacLease:
    lease = m.MacLease(uuid=tx.new_uuid("mac_leases", Params({})), interface_id=interface.id,
                       mac_address=tx.unique_mac(params))
    return tx.changes.add(lease)


def _first_mac_lease(tx: Tx, interface: m.Interface) -> m.MacLease | None:
    return tx.session.scalar(select(m.MacLease).where(m.MacLease.interface_id == interface.id)
                             .order_by(m.MacLease.id))


@handler("create", "mac_leases")
def create_mac_lease(tx: Tx, _uuid: str | None, params: Params) -> Row:
    interface = tx.ref(m.Interface, params, "interface_uuid")
    lease = m.MacLease(uuid=tx.new_uuid("mac_leases", params), interface_id=interface.id,
                       mac_address=tx.unique_mac(params))
    return tx.row(tx.changes.add(lease))


@handler("delete", "mac_leases")
def delete_mac_lease(tx: Tx, uuid: str | None, _params: Params) -> Row:
    lease = tx.get(m.MacLease, uuid)
    for ip in tx.session.scalars(select(m.IpLease).where(m.IpLease.mac_lease_id == lease.id)):
        tx.changes.delete(ip)
    return tx.changes.delete(lease)


@handler("create", "ip_leases")
def create_ip_lease(tx: Tx, _uuid: str | None, params: Params) -> Row:
    interface = tx.ref(m.Interface, params, "interface_uuid")
    network = tx.ref(m.Network, params, "network_uuid")
    mac_lease = tx.ref(m.MacLease, params, "mac_lease_uuid", required=False)
    if mac_lease is not None and mac_lease.interface_id != interface.id:
        raise invalid("mac_lease_uuid", f"{mac_lease.uuid} belongs to another interface")
    lease = _new_ip_lease(tx, interface, network, params,
                          mac_lease or _first_mac_lease(tx, interface),
                          tx.new_uuid("ip_leases", params))
    return tx.row(lease)


@handler("delete", "ip_leases")
def delete_ip_lease(tx: Tx, uuid: str | None, _params: Params) -> Row:
    return tx.changes.delete(tx.get(m.IpLease, uuid))


# ---------------------------------------------------------------- interfaces

@handler("create", "interfaces")
def create_interface(tx: Tx, _uuid: str | None, params: Params) -> Row:
    owner = tx.ref(m.Datapath, params, "owner_datapath_uuid", required=False)
    network = tx.ref(m.Network, params, "network_uuid", required=False)
    if network is None and params.has("ipv4_address"):
        raise invalid("network_uuid", "network_uuid is required with ipv4_address")
    interface = m.Interface(uuid=tx.new_uuid("interfaces", params),
                            display_name=params.text("display_name"),
                            mode=params.choice("mode", INTERFACE_MODES, "vif"),
                            owner_datapath_id=owner.id if owner else None,
                            port_name=params.text("port_name"),
                            enable_routing=params.boolean("enable_routing", False))
    tx.changes.add(interface)
    mac_lease = _new_mac_lease(tx, interface, params)
    if network is not None:
        _new_ip_lease(tx, interface, network, params, mac_lease)
    return tx.row(interface)


@handler("update", "interfaces")
def update_interface(tx: Tx, uuid: str | None, params: Params) -> Row:
    interface = tx.get(m.Interface, uuid)
    _apply_text(interface, params, "display_name", "port_name")
    if params.has("owner_datapath_uuid"):
        interface.owner_datapath_id = tx.ref(m.Datapath, params, "owner_datapath_uuid").id
    if params.has("enable_routing"):
        interface.enable_routing = params.boolean("enable_routing")
    if params.has("mode"):
        interface.mode = params.choice("mode", INTERFACE_MODES)
    return tx.row(tx.changes.touch(interface))


@handler("delete", "interfaces")
def delete_interface(tx: Tx, uuid: str | None, _params: Params) -> Row:
    interface = tx.get(m.Interface, uuid)
    tx.refuse_if_used(interface.uuid, {
        "routes": (m.Route, m.Route.interface_id == interface.id),
        "datapath networks": (m.DatapathNetwork, m.DatapathNetwork.interface_id == interface.id),
        "datapath route links": (m.DatapathRouteLink,
                                 m.DatapathRouteLink.interface_id == interface.id),
    })
    for model in (m.IpLease, m.MacLease, m.InterfaceSecurityGroup):
        for child in tx.session.scalars(select(model).where(model.interface_id == interface.id)):
            tx.changes.delete(child)
    return tx.changes.delete(interface)


# ---------------------------------------------------------------- routers

@handler("create", "route_links")
def create_route_link(tx: Tx, _uuid: str | None, params: Params) -> Row:
    link = m.RouteLink(uuid=tx.new_uuid("route_links", params),
                       display_name=params.text("display_name"), mac_address=tx.unique_mac(params))
    return tx.row(tx.changes.add(link))


@handler("update", "route_links")
def update_route_link(tx: Tx, uuid: str | None, params: Params) -> Row:
    link = tx.get(m.RouteLink, uuid)
    _apply_text(link, params, "display_name")
    return tx.row(tx.changes.touch(link))


@handler("delete", "route_links")
def delete_route_link(tx: Tx, uuid: str | None, _params: Params) -> Row:
    link = tx.get(m.RouteLink, uuid)
    tx.refuse_if_used(link.uuid, {"routes": (m.Route, m.Route.route_link_id == link.id)})
    for join in tx.session.scalars(select(m.DatapathRouteLink)
                                   .where(m.DatapathRouteLink.route_link_id == link.id)):
        tx.changes.delete(join)
    return tx.changes.delete(link)


@handler("create", "routes")
def create_route(tx: Tx, _uuid: str | None, params: Params) -> Row:
    uuid = tx.new_uuid("routes", params)
    interface = tx.ref(m.Interface, params, "interface_uuid")
    link = tx.ref(m.RouteLink, params, "route_link_uuid")
    network = tx.ref(m.Network, params, "network_uuid", required=False)
    if network is None:
        lease = tx.session.scalar(select(m.IpLease).where(m.IpLease.interface_id == interface.id))
        if lease is None:
            raise invalid("network_uuid", "network_uuid is required: the interface has no address")
        network = tx.session.get(m.Network, lease.network_id)
    if not params.has("ipv4_network"):
        params.raw["ipv4_network"] = format_ipv4(network.ipv4_network)
    if not params.has("ipv4_prefix") and params.ipv4("ipv4_network") == network.ipv4_network:
        params.raw["ipv4_prefix"] = network.ipv4_prefix
    address, prefix = _network_address(params)
    route = m.Route(uuid=uuid, display_name=params.text("display_name"),
                    interface_id=interface.id, route_link_id=link.id, network_id=network.id,
                    ipv4_network=address, ipv4_prefix=prefix,
                    ingress=params.boolean("ingress", True), egress=params.boolean("egress", True))
    return tx.row(tx.changes.add(route))


@handler("update", "routes")
def update_route(tx: Tx, uuid: str | None, params: Params) -> Row:
    route = tx.get(m.Route, uuid)
    _apply_text(route, params, "display_name")
    for flag in ("ingress", "egress"):
        if params.has(flag):
            setattr(route, flag, params.boolean(flag))
    return tx.row(tx.changes.touch(route))


@handler("delete", "routes")
def delete_route(tx: Tx, uuid: str | None, _params: Params) -> Row:
    return tx.changes.delete(tx.get(m.Route, uuid))


# ---------------------------------------------------------------- security groups

@handler("create", "security_groups")
def create_security_group(tx: Tx, _uuid: str | None, params: Params) -> Row:
    group = m.SecurityGroup(uuid=tx.new_uuid("security_groups", params),
                            display_name=params.text("display_name"),
                            description=params.text("description"),
                            rules=params.text("rules", max_len=65535))
    return tx.row(tx.changes.add(group))


@handler("update", "security_groups")
def update_security_group(tx: Tx, uuid: str | None, params: Params) -> Row:
    group = tx.get(m.SecurityGroup, uuid)
    _apply_text(group, params, "display_name", "description")
    if params.has("rules"):
        group.rules = params.text("rules", max_len=65535)
    return tx.row(tx.changes.touch(group))


@handler("delete", "security_groups")
def delete_security_group(tx: Tx, uuid: str | None, _params: Params) -> Row:
    group = tx.get(m.SecurityGroup, uuid)
    for join in tx.session.scalars(select(m.InterfaceSecurityGroup)
                                   .where(m.InterfaceSecurityGroup.security_group_id == group.id)):
        tx.changes.delete(join)
    return tx.changes.delete(group)


# ---------------------------------------------------------------- join tables

def _pair(tx: Tx, params: Params, model: type[m.Resource], left: tuple[str, type, str],
          right: tuple[str, type, str]) -> tuple[Any, Any, Any]:
    """Resolve both ends of a join row; returns (left obj, right obj, existing join or None)."""
    (lfield, lmodel, lcol), (rfield, rmodel, rcol) = left, right
    lobj = tx.ref(lmodel, params, lfield)
    robj = tx.ref(rmodel, params, rfield)
    existing = tx.session.scalar(select(model).where(getattr(model, lcol) == lobj.id,
                                                     getattr(model, rcol) == robj.id))
    return lobj, robj, existing


_JOINS: dict[str, tuple[type[m.Resource], tuple[str, type, str], tuple[str, type, str]]] = {
    "datapath_networks": (m.DatapathNetwork, ("datapath_uuid", m.Datapath, "datapath_id"),
                          ("network_uuid", m.Network, "network_id")),
    "datapath_route_links": (m.DatapathRouteLink, ("datapath_uuid", m.Datapath, "datapath_id"),
                             ("route_link_uuid", m.RouteLink, "route_link_id")),
    "interface_security_groups": (m.InterfaceSecurityGroup,
                                  ("interface_uuid", m.Interface, "interface_id"),
                                  ("security_group_uuid", m.SecurityGroup, "security_group_id")),
}


def _create_join(resource: str) -> Handler:
    model, left, right = _JOINS[resource]

    def create(tx: Tx, _uuid: str | None, params: Params) -> Row:
        lobj, robj, existing = _pair(tx, params, model, left, right)
        if existing is not None:
            raise conflict(right[0], f"{robj.uuid} is already added to {lobj.uuid}")
        join = model(uuid=tx.new_uuid(resource, params))
        setattr(join, left[2], lobj.id)
        setattr(join, right[2], robj.id)
        if resource == "datapath_networks":
            join.broadcast_mac_address = tx.unique_mac(params, "broadcast_mac_address")
        if resource == "datapath_route_links":
            join.mac_address = tx.unique_mac(params)
        if resource != "interface_security_groups":
            host = tx.ref(m.Interface, params, "interface_uuid", required=False)
            join.interface_id = host.id if host else None
        return tx.row(tx.changes.add(join))

    return create


def _delete_join(resource: str) -> Handler:
    model, left, right = _JOINS[resource]

    def delete(tx: Tx, uuid: str | None, params: Params) -> Row:
        if uuid is not None:
            return tx.changes.delete(tx.get(model, uuid))
        lobj, robj, existing = _pair(tx, params, model, left, right)
        if existing is None:
            raise ApiError(404, f"{robj.uuid} is not added to {lobj.uuid}", right[0])
        return tx.changes.delete(existing)

    return delete


for _resource in _JOINS:
    HANDLERS[("create", _resource)] = _create_join(_resource)
    HANDLERS[("delete", _resource)] = _delete_join(_resource)
