"""What the model offers a vif by DHCP: its lease on a network with a dhcp service, and
the options of that network (RFC 2132, RFC 3442), read from one View.

Pure functions of the View, used by the dhcp feature's packet-in handler
(vna.features.dhcp); nothing here builds packets.  Addresses are the model's leases:
there is no pool and nothing to allocate or free.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from vna.routers import topology
from vna.view import View

LEASE_TIME = 86400  # option 51, seconds
RENEWAL_TIME = LEASE_TIME // 2  # option 58: T1 = 0.5 * lease (RFC 2131 4.4.5)
REBINDING_TIME = LEASE_TIME * 7 // 8  # option 59: T2 = 0.875 * lease
# Option 26 when the network has no `mtu`: what fits a 1500-byte underlay.
TRANSPORT_MTU = {"tunnel": 1450, "mac2mac": 1500}
DEFAULT_ROUTE = ipaddress.IPv4Network("0.0.0.0/0")


@dataclass(frozen=True)
class Server:
    """A network service's address on one network: the MAC and IP it answers from."""

    service_uuid: str
    mac: str
    ipv4: str


@dataclass(frozen=True)
class Offer:
    """Everything a DHCP answer on `network_uuid` carries (the message type aside)."""

    network_uuid: str
    server: Server
    yiaddr: str
    subnet_mask: str
    router: str | None
    dns: tuple[str, ...]
    domain_name: str | None
    mtu: int
    routes: tuple[tuple[ipaddress.IPv4Network, str], ...]  # option 121: (prefix, router)
    lease_time: int = LEASE_TIME
    renewal_time: int = RENEWAL_TIME
    rebinding_time: int = REBINDING_TIME


def services_by_network(view: View, service_type: str) -> dict[str, Server]:
    """network uuid -> the address of a `service_type` network service on it (the
    service interface's lease there).  Several services of one type on a network (the
    API refuses it): the lowest service id wins.  Computed once per View."""
    key = f"network_services:{service_type}"
    cached = view.cache.get(key)
    if cached is not None:
        return cached
    found: dict[str, Server] = {}
    rows = sorted(view.model.get("network_services", {}).values(), key=lambda r: r["id"])
    for row in rows:
        if (row.get("type") or row.get("mode")) != service_type:
            continue
        for addr in view.addresses_of(row["interface_uuid"]):
            found.setdefault(addr.network_uuid, Server(row["uuid"], addr.mac, addr.ipv4))
    view.cache[key] = found
    return found


def dhcp_server(view: View, network_uuid: str) -> Server | None:
    return services_by_network(view, "dhcp").get(network_uuid)


def networks_served_by(view: View, interface_uuid: str) -> set[str]:
    """The networks on which `interface_uuid` is the address of some network service
    (its leases' networks, if any service names it)."""
    if not any(r["interface_uuid"] == interface_uuid
               for r in view.model.get("network_services", {}).values()):
        return set()
    return view.networks_of(interface_uuid)


def _router_ports(view: View, network_uuid: str) -> list[tuple[str, str]]:
    """(route_link uuid, gateway IP) of the routers accepting traffic from this
    network, lowest router id first."""
    topo = topology(view)
    out = []
    for link in topo.attached.get(network_uuid, []):
        port = topo.routers[link].ports[network_uuid]
        if port.ingress and port.ipv4 is not None:
            out.append((link, port.ipv4))
    return out


def _static_routes(view: View, network_uuid: str, subnet: ipaddress.IPv4Network,
                   ports: list[tuple[str, str]]
                   ) -> tuple[tuple[ipaddress.IPv4Network, str], ...]:
    """Option 121: the default route via the first router, then each other router's
    prefixes (its routes to other networks) via that router.  A client honouring 121
    ignores option 3, so the default route must be in it."""
    if not ports:
        return ()
    routes = [(DEFAULT_ROUTE, ports[0][1])]
    seen = {DEFAULT_ROUTE, subnet}
    topo = topology(view)
    for link, gateway in ports[1:]:
        for entry in sorted(topo.routers[link].routes, key=lambda r: r.route_id):
            if entry.out_network != network_uuid and entry.prefix not in seen:
                seen.add(entry.prefix)
                routes.append((entry.prefix, gateway))
    return tuple(routes)


def offer_for(view: View, network_uuid: str, mac: str, leased: list[str]) -> Offer | None:
    """The offer for a client MAC on a network, given the addresses that MAC leases
    there: None without a dhcp service on the network or without a lease."""
    server = dhcp_server(view, network_uuid)
    network = view.network(network_uuid)
    if server is None or network is None or not leased:
        return None
    subnet = ipaddress.IPv4Network(f"{network['ipv4_network']}/{network['ipv4_prefix']}",
                                   strict=False)
    ports = _router_ports(view, network_uuid)
    dns = services_by_network(view, "dns").get(network_uuid)
    mtu = network.get("mtu") or TRANSPORT_MTU.get(view.binding.transport, 1500)
    return Offer(
        network_uuid=network_uuid,
        server=server,
        yiaddr=leased[0],
        subnet_mask=str(subnet.netmask),
        router=ports[0][1] if ports else None,
        dns=(dns.ipv4,) if dns is not None else (),
        domain_name=network.get("domain_name") or None,
        mtu=int(mtu),
        routes=_static_routes(view, network_uuid, subnet, ports),
    )
