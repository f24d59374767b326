"""Dependency helpers for the features' rules: who reads what in a View.

Each helper answers one question about the model graph ("which interfaces are on this
network", "which routers share a component with this one") as a set of owner keys.  The
feature modules compose them into their own rules (Feature.dirty); vna.dirty takes the
union.  See "Owners and dependencies" in docs/pipeline.md.
"""

from __future__ import annotations

from vna.feature import OwnerKey
from vna.modelstore import Change
from vna.routers import topology
from vna.view import Row, View

# Rows that belong to one interface: its leases and its port claims (bindings).
OF_INTERFACE = ("mac_leases", "ip_leases", "active_interfaces")


def rows(change: Change) -> list[Row]:
    return [r for r in (change.old, change.new) if r is not None]


def changed_interfaces(change: Change) -> set[str]:
    """Interfaces an interface, lease or binding change is about."""
    if change.resource == "interfaces":
        return {change.uuid}
    if change.resource in OF_INTERFACE:
        return {row["interface_uuid"] for row in rows(change)}
    return set()


def interfaces(uuids: set[str] | list[str]) -> set[OwnerKey]:
    return {("interface", u) for u in uuids}


def networks(uuids: set[str] | list[str]) -> set[OwnerKey]:
    return {("network", u) for u in uuids}


def all_of(view: View, resource: str, owner_type: str) -> set[OwnerKey]:
    return {(owner_type, uuid) for uuid in view.uuids(resource)}


def interfaces_on(view: View, network: str) -> set[OwnerKey]:
    return interfaces(view.interfaces_on_network(network))


def networks_using(view: View, iface: str) -> set[OwnerKey]:
    """Networks whose datapath_network names this interface as host port."""
    return networks({d["network_uuid"] for d in view.dpns_using_interface(iface)})


def sharing_host_port(view: View, network: str) -> set[OwnerKey]:
    """Networks whose datapath_network (on this datapath) uses the same host port."""
    dpn = view.my_dpn(network)
    if dpn is None or not dpn.get("interface_uuid"):
        return set()
    return networks_using(view, dpn["interface_uuid"])


def host_interface_datapaths(change: Change) -> set[str]:
    """Datapaths whose host interface (underlay address, fallback underlay port) this
    interface change is about."""
    return {
        row["owner_datapath_uuid"]
        for row in rows(change)
        if change.resource == "interfaces" and row.get("mode") == "host"
        and row.get("owner_datapath_uuid")
    }


def hosted_host_interfaces(view: View, iface: str) -> set[str]:
    """The datapath of `iface` if it is a host interface, else nothing."""
    row = view.interface(iface)
    if row is None or row.get("mode") != "host" or not row.get("owner_datapath_uuid"):
        return set()
    return {row["owner_datapath_uuid"]}


def router_component(view: View, link: str) -> set[OwnerKey]:
    """Every router of `link`'s connected component: a router's flows depend on its
    whole component."""
    topo = topology(view)
    return {("route_link", u) for u in topo.component(link) or frozenset({link})}


def networks_of_component(view: View, link: str) -> set[OwnerKey]:
    topo = topology(view)
    component = topo.component(link) or frozenset({link})
    return networks(topo.networks_of_component(component & topo.routers.keys()))


def router_links(view: View, change: Change) -> set[str]:
    """Routers a change can reshape: routes and route links themselves, the router
    ports (interfaces and leases of interfaces some route names), and networks (their
    subnet and the routers attached to them)."""
    links: set[str] = set()
    if change.resource == "route_links":
        links.add(change.uuid)
    elif change.resource == "routes":
        links |= {row["route_link_uuid"] for row in rows(change)}
    elif change.resource == "networks" and view.network(change.uuid) is not None:
        links |= {r["route_link_uuid"] for r in view.routes_on_network(change.uuid)}
        links |= set(topology(view).attached.get(change.uuid, []))
    for iface in changed_interfaces(change):
        links |= {r["route_link_uuid"] for r in view.routes_of_interface(iface)}
    return links


def own_interface(change: Change, view: View) -> set[OwnerKey]:
    """Rule of the features whose interface flows read only that interface's row, leases
    and port, and the ids/modes of the networks it leases on."""
    out = interfaces(changed_interfaces(change))
    if change.resource == "networks":
        out |= interfaces_on(view, change.uuid)
    return out


def routers(change: Change, view: View) -> set[OwnerKey]:
    """Rule of the router-owned flows: a router's flows depend on its whole connected
    component - its routes, the ports (interfaces and leases) and networks of every
    router sharing a network with it."""
    out: set[OwnerKey] = set()
    for link in router_links(view, change):
        out |= router_component(view, link)
    return out
