"""The DNS services of the model, indexed once per View (view.cache).

A dns service is a `network_services` row of type "dns" whose interface (mode
simulated) holds an IP lease on a network: the server's address and MAC on that network
are that lease's.  Its configuration is the `dns_services` row naming it (upstream
resolvers in `public_dns`) and that row's `dns_records` (name, ipv4_address, ttl).
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from dataclasses import dataclass

from vna.view import Row, View

DNS = "dns"
UPSTREAM_PORT = 53


@dataclass(frozen=True)
class DnsServer:
    """One dns service's address on one network."""

    network_service_uuid: str
    interface_uuid: str
    network_uuid: str
    ipv4: str
    mac: str


def servers(view: View) -> dict[str, list[DnsServer]]:
    """network uuid -> the dns servers on it (by service id), for virtual networks."""
    cached = view.cache.get("dns_servers")
    if cached is not None:
        return cached
    out: dict[str, list[DnsServer]] = defaultdict(list)
    services = sorted(view.model.get("network_services", {}).values(), key=lambda r: r["id"])
    for service in services:
        if _type(service) != DNS:
            continue
        iface = service.get("interface_uuid")
        for addr in view.addresses_of(iface) if view.interface(iface) is not None else ():
            if view.is_virtual(addr.network_uuid):
                out[addr.network_uuid].append(
                    DnsServer(service["uuid"], iface, addr.network_uuid, addr.ipv4, addr.mac))
    view.cache["dns_servers"] = result = dict(out)
    return result


def _type(service: Row) -> str | None:
    return service.get("type") or service.get("mode")


def server_networks(view: View, network_service_uuid: str | None) -> set[str]:
    """Networks a network service serves on (its interface's leases), if it is dns."""
    row = view.row("network_services", network_service_uuid)
    if row is None or _type(row) != DNS or not row.get("interface_uuid"):
        return set()
    return view.networks_of(row["interface_uuid"])


def service_config(view: View, network_service_uuid: str) -> Row | None:
    """The dns_services row of a dns network service (the oldest if several)."""
    rows = [r for r in view.model.get("dns_services", {}).values()
            if r.get("network_service_uuid") == network_service_uuid]
    return min(rows, key=lambda r: r["id"]) if rows else None


def records(view: View, dns_service_uuid: str) -> list[Row]:
    """dns_records of a dns_services row, by id (read at query time: record changes
    apply to the next query)."""
    index = view.cache.get("dns_records")
    if index is None:
        index = defaultdict(list)
        for row in sorted(view.model.get("dns_records", {}).values(), key=lambda r: r["id"]):
            index[row.get("dns_service_uuid")].append(row)
        view.cache["dns_records"] = index
    return index.get(dns_service_uuid, [])


def host_name(name: object) -> str | None:
    """A record's name as lower-case labels without the trailing dot ('' -> None)."""
    text = str(name or "").strip().strip(".").lower()
    return text or None


def domain_of(view: View, network_uuid: str) -> str | None:
    return host_name((view.network(network_uuid) or {}).get("domain_name"))


def record_index(view: View, dns_service_uuid: str, domain: str | None
                 ) -> tuple[dict[str, list[Row]], dict[str, list[Row]]]:
    """(absolute lower-case name "vm3." / "vm3.example.test." -> records, IPv4 address
    -> records) of a dns_services row, built once per View and domain."""
    key = ("dns_index", dns_service_uuid, domain)
    cached = view.cache.get(key)
    if cached is not None:
        return cached
    by_name: dict[str, list[Row]] = defaultdict(list)
    by_address: dict[str, list[Row]] = defaultdict(list)
    for row in records(view, dns_service_uuid):
        name = host_name(row.get("name"))
        if name is None:
            continue
        by_name[name + "."].append(row)
        if domain is not None:
            by_name[f"{name}.{domain}."].append(row)
        by_address[row.get("ipv4_address")].append(row)
    view.cache[key] = index = (dict(by_name), dict(by_address))
    return index


def upstreams(config: Row | None) -> list[tuple[str, int]]:
    """public_dns ("8.8.8.8,1.1.1.1") as (address, port); invalid entries are skipped."""
    out = []
    for item in str((config or {}).get("public_dns") or "").split(","):
        try:
            out.append((str(ipaddress.IPv4Address(item.strip())), UPSTREAM_PORT))
        except ValueError:
            continue
    return out
