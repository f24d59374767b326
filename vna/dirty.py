"""Which owners' flows a model change (or a port change) can affect.

Every rule below mirrors a read some feature does; see "Owners and dependencies" in
docs/pipeline.md.  Each change is evaluated against the view before and after it, so
both the owners that used to depend on a row and those that now do are recomputed.
The mapping is tight where it matters: an interface or lease change touches only that
interface, its networks' owners when it is local, and routers when it is a router
port - never every interface of a network.
"""

from __future__ import annotations

from collections.abc import Iterable

from vna.desired import DATAPATH, OwnerKey, owners
from vna.modelstore import Change
from vna.routers import topology
from vna.view import LocalBinding, View


def dirty_owners(changes: Iterable[Change], old_view: View, new_view: View) -> set[OwnerKey]:
    dirty: set[OwnerKey] = set()
    for change in changes:
        for view in (old_view, new_view):
            dirty |= _touched(view, change)
    return dirty


def dirty_for_ports(old: LocalBinding, new: LocalBinding, view: View) -> set[OwnerKey]:
    """Owners affected by a binding change (ports added/removed/renumbered)."""
    if (old.datapath_uuid, old.transport) != (new.datapath_uuid, new.transport):
        return owners(view)
    dirty: set[OwnerKey] = set()
    if old.tunnel_ofport != new.tunnel_ofport:
        dirty |= _all_of(view, "networks", "network") | _all_of(view, "interfaces", "interface")
    for iface in set(old.ports) | set(new.ports):
        if old.ports.get(iface) != new.ports.get(iface):
            dirty |= _interface_touched(view, iface)
    return dirty


def _touched(view: View, change: Change) -> set[OwnerKey]:
    rows = [r for r in (change.old, change.new) if r is not None]
    resource = change.resource
    out: set[OwnerKey] = set()
    if resource == "interfaces":
        out |= _interface_touched(view, change.uuid)
        for row in rows:
            # mode/owner changes decide whether this is the host interface of a datapath
            if row.get("mode") == "host":
                out |= _host_interface_touched(view, row.get("owner_datapath_uuid"))
    elif resource in ("mac_leases", "ip_leases"):
        for row in rows:
            out |= _interface_touched(view, row["interface_uuid"])
    elif resource == "networks":
        out |= _network_touched(view, change.uuid)
    elif resource == "datapath_networks":
        for row in rows:
            out |= _dpn_touched(view, row)
    elif resource == "route_links":
        out |= _router_touched(view, change.uuid)
    elif resource == "routes":
        for row in rows:
            out |= _router_touched(view, row["route_link_uuid"])
    # datapaths, datapath_route_links, security groups: no flow reads them (yet).
    return out


def _interface_touched(view: View, iface: str) -> set[OwnerKey]:
    out: set[OwnerKey] = {("interface", iface)}
    row = view.interface(iface)
    if row is None:
        return out
    if view.is_local(iface):
        out |= {("network", n) for n in view.networks_of(iface)}
    if row.get("mode") == "host":
        out |= _host_interface_touched(view, row.get("owner_datapath_uuid"))
    out |= _networks_using(view, iface)
    for route in view.routes_of_interface(iface):
        out |= _router_touched(view, route["route_link_uuid"])
    return out


def _host_interface_touched(view: View, datapath: str | None) -> set[OwnerKey]:
    """A host interface carries its datapath's underlay IP (read by every remote vif of
    that datapath) and, for our own datapath, the fallback underlay port (read by
    everything mac2mac).  Rare; conservative."""
    if datapath is None:
        return set()
    if datapath == view.binding.datapath_uuid:
        return _all_of(view, "interfaces", "interface") | _all_of(view, "networks", "network")
    return {("interface", i) for i in view.hosted_on(datapath)}


def _network_touched(view: View, network: str) -> set[OwnerKey]:
    out: set[OwnerKey] = {("network", network)}
    if view.network(network) is None:
        return out
    out |= {("interface", i) for i in view.interfaces_on_network(network)}
    out |= _sharing_host_port(view, network)
    for route in view.routes_on_network(network):
        out |= _router_touched(view, route["route_link_uuid"])
    for link in topology(view).attached.get(network, []):
        out |= _router_touched(view, link)
    return out


def _dpn_touched(view: View, dpn: dict) -> set[OwnerKey]:
    network = dpn["network_uuid"]
    out: set[OwnerKey] = {("network", network)} | _sharing_host_port(view, network)
    if dpn.get("interface_uuid"):
        out |= _networks_using(view, dpn["interface_uuid"])
    on_network = view.interfaces_on_network(network)
    if dpn["datapath_uuid"] == view.binding.datapath_uuid:
        out |= {("interface", i) for i in on_network}
    else:
        out |= {("interface", i) for i in view.hosted_on(dpn["datapath_uuid"]) if i in on_network}
    return out


def _sharing_host_port(view: View, network: str) -> set[OwnerKey]:
    dpn = view.my_dpn(network)
    if dpn is None or not dpn.get("interface_uuid"):
        return set()
    return _networks_using(view, dpn["interface_uuid"])


def _networks_using(view: View, iface: str) -> set[OwnerKey]:
    """Networks whose datapath_network names this interface as host port."""
    return {("network", d["network_uuid"]) for d in view.dpns_using_interface(iface)}


def _router_touched(view: View, link: str) -> set[OwnerKey]:
    """A router's flows depend on its whole component; networks attached to the
    component hold the mac2mac routed-source restore flows."""
    topo = topology(view)
    component = topo.component(link) or frozenset({link})
    out: set[OwnerKey] = {("route_link", u) for u in component}
    out |= {("network", n) for n in topo.networks_of_component(component & topo.routers.keys())}
    return out


def _all_of(view: View, resource: str, owner_type: str) -> set[OwnerKey]:
    return {(owner_type, uuid) for uuid in view.uuids(resource)}


__all__ = ["DATAPATH", "dirty_owners", "dirty_for_ports"]
