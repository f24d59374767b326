"""mac2mac over a route link: the datapath_route_link (dprl) half of the mac2mac transport.

A datapath_network MAC names (datapath, network) on the underlay segment, so a frame for
a vif on network N can only be sent that way when both datapaths join N.  OpenVNet's
operators join a network only where its VMs live, and give each datapath a MAC per
router instead (`datapath_route_links`).  A routed frame then travels as
`eth_src = our dprl MAC, eth_dst = the peer's dprl MAC` of a router R; the receiver
classifies on its dprl MAC and works out the destination network from the IPv4
destination with R's own routes (what R delivers onto one of its networks), then
restores the MACs like any mac2mac frame (RX_DST/RX_SRC).

The choice is a pure function of the View; the dprl rows are indexed once per View in
`view.cache` (few rows: routers x datapaths).
"""

from __future__ import annotations

from vna.routers import Prefix, prefix, topology
from vna.view import Row, View

_CACHE = "datapath_route_links"


def _index(view: View) -> dict[tuple[str, str], Row]:
    """(datapath uuid, route link uuid) -> dprl row; the oldest row wins a duplicate."""
    if _CACHE not in view.cache:
        index: dict[tuple[str, str], Row] = {}
        rows = sorted(view.model.get("datapath_route_links", {}).values(), key=lambda r: r["id"])
        for row in rows:
            index.setdefault((row["datapath_uuid"], row["route_link_uuid"]), row)
        view.cache[_CACHE] = index
    return view.cache[_CACHE]


def dprl(view: View, datapath_uuid: str | None, link_uuid: str) -> Row | None:
    if datapath_uuid is None:
        return None
    return _index(view).get((datapath_uuid, link_uuid))


def my_dprl(view: View, link_uuid: str) -> Row | None:
    return dprl(view, view.binding.datapath_uuid, link_uuid)


def has_dprl(view: View) -> bool:
    """Whether this datapath has any dprl row (else no route link carries anything)."""
    mine = view.binding.datapath_uuid
    return any(dp == mine for dp, _link in _index(view))


def mac(row: Row) -> str:
    return str(row["mac_address"]).lower()


def underlay_port(view: View, link_uuid: str) -> int | None:
    """Where this datapath sends and receives a route link's mac2mac frames: the ofport
    of our dprl's interface, else of our first attached host interface (as
    View.underlay_port does for a datapath_network)."""
    row = my_dprl(view, link_uuid)
    if row is None:
        return None
    if row.get("interface_uuid"):
        return view.ofport(row["interface_uuid"])
    return view.host_port()


def delivers_on(view: View, link_uuid: str, q: Prefix) -> str | None:
    """The network router `link_uuid` itself delivers destinations in q onto (it is the
    last router of their path), or None.  The sender resolves its whole path and hands
    the frame to the route link of the last router, and resolution from that router is
    the same step for both ends, so both agree on the destination network."""
    topo = topology(view)
    router = topo.routers.get(link_uuid)
    if router is None:
        return None
    path = topo.resolve(router, q)
    return path.network_uuid if path is not None and path.hops == 1 else None


def link_toward(view: View, peer: str, network_uuid: str, ipv4s: list[str]) -> str | None:
    """A route link that carries frames for these addresses on `network_uuid` from us to
    datapath `peer`: both datapaths have a dprl row for it and it delivers every one of
    the addresses onto that network.  Lowest route link id first; None if there is none."""
    if not ipv4s:
        return None
    for link in topology(view).attached.get(network_uuid, []):  # sorted by id
        if my_dprl(view, link) is None or dprl(view, peer, link) is None:
            continue
        if all(delivers_on(view, link, prefix(ip, 32)) == network_uuid for ip in ipv4s):
            return link
    return None
