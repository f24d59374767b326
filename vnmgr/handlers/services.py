"""Network services answered at the edge (OpenVNet's network_services, dns_services and
dns_records): a service is a simulated interface's address on a network; the vnas answer
DHCP and DNS for it on the VM's own datapath (docs/pipeline.md)."""

from __future__ import annotations

import re

from sqlalchemy import select

from vnet import models as m
from vnet.addr import AddressError, parse_ipv4
from vnet.errors import ApiError, conflict, invalid
from vnet.registry import DNS_TTL, SERVICE_TYPES
from vnet.serialize import Row
from vnmgr.handlers.tx import Tx, apply_text, handler, text_update
from vnmgr.params import Params

# RFC 1123 §2.1 host name labels (letters, digits, inner hyphens; 1-63 each), dotted.
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOST_NAME = re.compile(rf"{_LABEL}(\.{_LABEL})*")


def _network_of(tx: Tx, interface: m.Interface) -> int | None:
    """The network id of the interface's first IP lease (where it serves)."""
    return tx.session.scalar(select(m.IpLease.network_id).where(
        m.IpLease.interface_id == interface.id).order_by(m.IpLease.id))


def refuse_if_serving(tx: Tx, interface: m.Interface, field: str, change: str) -> None:
    """Raises ApiError(409, field) when a network service uses the interface: its mode and
    its one address are the service's (a change would leave the service without an
    address, or give a dhcp server a second network)."""
    service = tx.session.scalar(select(m.NetworkService.uuid).where(
        m.NetworkService.interface_id == interface.id))
    if service is not None:
        raise conflict(field, f"{interface.uuid} is the address of network service "
                              f"{service}: {change} would break it; delete the service first")


@handler("create", "network_services")
def create_network_service(tx: Tx, _uuid: str | None, params: Params) -> Row:
    """Raises ApiError(422, "interface_uuid") unless the interface is simulated with an
    IP lease (its address is the service's), ApiError(409, "type") for a second dhcp
    service on one network."""
    interface = tx.ref(m.Interface, params, "interface_uuid")
    kind = params.choice("type", SERVICE_TYPES)
    if interface.mode != "simulated":
        raise invalid("interface_uuid", f"{interface.uuid} is mode {interface.mode}: a "
                      "service's interface is mode=simulated (its address is the service's)")
    network = _network_of(tx, interface)
    if network is None:
        raise invalid("interface_uuid", f"{interface.uuid} has no IP lease: the service "
                      "would have no address")
    if kind == "dhcp":
        for other in tx.session.scalars(select(m.NetworkService).where(
                m.NetworkService.type == "dhcp")):
            if _network_of(tx, tx.session.get(m.Interface, other.interface_id)) == network:
                raise conflict("type", f"the network already has dhcp service {other.uuid}")
    service = m.NetworkService(uuid=tx.new_uuid("network_services", params),
                               display_name=params.text("display_name"),
                               interface_id=interface.id, type=kind)
    return tx.row(tx.changes.add(service))


text_update("network_services", m.NetworkService, "display_name")


@handler("delete", "network_services")
def delete_network_service(tx: Tx, uuid: str | None, _params: Params) -> Row:
    """Takes its dns service (and that one's records) along."""
    service = tx.get(m.NetworkService, uuid)
    for dns in tx.session.scalars(select(m.DnsService).where(
            m.DnsService.network_service_id == service.id)):
        _delete_dns_service(tx, dns)
    return tx.changes.delete(service)


def _public_dns(params: Params) -> str | None:
    """Comma-separated IPv4 resolvers, normalised; raises ApiError(422, "public_dns")."""
    text = params.text("public_dns")
    if text is None:
        return None
    servers = [s.strip() for s in text.split(",") if s.strip()]
    for server in servers:
        try:
            parse_ipv4(server)
        except AddressError as exc:
            raise invalid("public_dns", f"public_dns: {server!r}: {exc}") from None
    return ",".join(servers) or None


@handler("create", "dns_services")
def create_dns_service(tx: Tx, _uuid: str | None, params: Params) -> Row:
    """Raises ApiError(422, "network_service_uuid") unless it names a dns service,
    ApiError(409, "network_service_uuid") when that one already has its dns service."""
    service = tx.ref(m.NetworkService, params, "network_service_uuid")
    if service.type != "dns":
        raise invalid("network_service_uuid", f"{service.uuid} is a {service.type} service, "
                      "not dns")
    public_dns = _public_dns(params)
    if tx.exists(m.DnsService, m.DnsService.network_service_id == service.id):
        raise conflict("network_service_uuid", f"{service.uuid} already has a dns service")
    dns = m.DnsService(uuid=tx.new_uuid("dns_services", params),
                       display_name=params.text("display_name"),
                       network_service_id=service.id, public_dns=public_dns)
    return tx.row(tx.changes.add(dns))


@handler("update", "dns_services")
def update_dns_service(tx: Tx, uuid: str | None, params: Params) -> Row:
    dns = tx.get(m.DnsService, uuid)
    apply_text(dns, params, "display_name")
    if params.has("public_dns"):
        dns.public_dns = _public_dns(params)
    elif params.clears("public_dns"):
        dns.public_dns = None
    return tx.row(tx.changes.touch(dns))


def _delete_dns_service(tx: Tx, dns: m.DnsService) -> Row:
    tx.delete_where(m.DnsRecord, m.DnsRecord.dns_service_id == dns.id)
    return tx.changes.delete(dns)


@handler("delete", "dns_services")
def delete_dns_service(tx: Tx, uuid: str | None, _params: Params) -> Row:
    """Takes its records along."""
    return _delete_dns_service(tx, tx.get(m.DnsService, uuid))


@handler("create", "dns_records")
def create_dns_record(tx: Tx, _uuid: str | None, params: Params) -> Row:
    """Raises ApiError(422, "name") for a name that is not an RFC 1123 host name,
    ApiError(409, "name") for the same name and address twice in one service."""
    dns = tx.ref(m.DnsService, params, "dns_service_uuid")
    # One trailing dot is the absolute form of the same name (RFC 1034 §3.1); more is an
    # empty label, refused below.
    name = (params.text("name", required=True, max_len=253) or "").lower().removesuffix(".")
    if not _HOST_NAME.fullmatch(name):
        raise invalid("name", f"name {name!r} is not a host name (RFC 1123: dotted labels "
                      "of letters, digits and inner hyphens, 63 characters each at most)")
    address = params.ipv4("ipv4_address", required=True)
    low, high = DNS_TTL
    ttl = params.integer("ttl", low=low, high=high)
    if tx.exists(m.DnsRecord, m.DnsRecord.dns_service_id == dns.id, m.DnsRecord.name == name,
                 m.DnsRecord.ipv4_address == address):
        raise conflict("name", f"{name} already has that address in {dns.uuid}")
    record = m.DnsRecord(uuid=tx.new_uuid("dns_records", params), dns_service_id=dns.id,
                         name=name, ipv4_address=address, ttl=60 if ttl is None else ttl)
    return tx.row(tx.changes.add(record))


@handler("delete", "dns_records")
def delete_dns_record(tx: Tx, uuid: str | None, params: Params) -> Row:
    """Raises ApiError(404, "uuid") when the record is not the named dns service's."""
    dns = tx.ref(m.DnsService, params, "dns_service_uuid")
    record = tx.get(m.DnsRecord, uuid)
    if record.dns_service_id != dns.id:
        raise ApiError(404, f"{uuid} is not a record of {dns.uuid}", "uuid")
    return tx.changes.delete(record)
