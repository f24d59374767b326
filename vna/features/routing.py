"""ROUTE and ARP_RESOLVE: the distributed router, applied on the source datapath.

A packet a vif sends to a router port's MAC is routed here in one table pass, even
across a chain of routers (vna.routers resolves the path); ARP resolution gives it the
destination's MAC from the model (no ARP on the wire), then L2_LOOKUP sends it straight
to the datapath hosting the destination.  The router's own addresses are answered by
vna.features.gateway.

ICMP errors (vna.icmp_errors) are this feature's packet-ins: time exceeded for an
invalid-TTL packet-in of a ROUTE entry, network unreachable for the ROUTE entries without
a route (and the catch-all of each ingress port), host unreachable for the ARP_RESOLVE
catch-all of a routed network - each from the router's address on the network the
packet entered it by.
"""

from __future__ import annotations

import ipaddress

from vna import deps, icmp_errors
from vna.actions import IN_PORT, Action, Controller, DecTtl, Meter, Move, SetField
from vna.feature import Feature, OwnerKey
from vna.features.common import interface_id, vif_addresses
from vna.flows import Flow, cookie_parts, ipv4_prefix_value, make_match
from vna.meters import ICMP_ERROR_METER_ID
from vna.modelstore import Change
from vna.pipeline import (
    ETH_IPV4,
    METADATA_MASK,
    REG_NEXTHOP,
    REG_OUTPORT,
    Prio,
    Table,
    on_network,
)
from vna.punt import PacketIn, PacketOut
from vna.routers import (
    Path,
    Port,
    Prefix,
    Router,
    Topology,
    minimal_prefix_table,
    prefix,
    topology,
)
from vna.view import View

KIND_ROUTE = 0x50  # obj route_links.id
KIND_ARP_RESOLVE = 0x51  # obj interfaces.id
KIND_HOST_UNREACH = 0x54  # obj networks.id: ARP_RESOLVE catch-all of a routed network

# Destination-unreachable punts come from per-router-port and per-network flows, not from
# one vif's: they share the datapath-wide ICMP error meter.
UNREACHABLE_PUNT = (Meter(ICMP_ERROR_METER_ID), Controller())


def route_link_flows(view: View, route_link_uuid: str) -> list[Flow]:
    """A router's route entries in ROUTE, for each of its ingress ports."""
    topo = topology(view)
    router = topo.routers.get(route_link_uuid)
    if router is None:
        return []
    prefixes = topo.breakpoints(topo.component(route_link_uuid))
    flows = []
    for port in sorted(router.ports.values(), key=lambda p: view.network_id(p.network_uuid)):
        if not port.ingress:
            continue
        table = minimal_prefix_table(prefixes, lambda q: _outcome(topo, router, q))
        if not table or table[0][0].prefixlen != 0:
            table.insert(0, (prefix("0.0.0.0", 0), None))  # no route at all: unreachable
        for q, path in table:
            flows.append(_route_flow(view, router, port.network_uuid, port.mac, q, path))
    return flows


def _outcome(topo: Topology, router: Router, q: Prefix) -> Path | None:
    return topo.resolve(router, q) if router.lpm(q) is not None else None


def _route_flow(
    view: View, router: Router, network: str, mac: str, q: Prefix, path: Path | None
) -> Flow:
    match = {"metadata": on_network(view.network_id(network)), "eth_dst": mac}
    match["eth_type"] = ETH_IPV4
    dst = ipv4_prefix_value(str(q.network_address), q.prefixlen)
    if dst is not None:
        match["ipv4_dst"] = dst
    common = {"kind": KIND_ROUTE, "obj_id": router.id}
    priority = Prio.PREFIX_BASE + q.prefixlen
    if path is None:  # no route (or a loop): ICMP network unreachable from the agent
        return Flow(Table.ROUTE, priority, make_match(match), UNREACHABLE_PUNT, **common)
    gateway = path.gateway_datapath
    if gateway is not None and gateway != view.binding.datapath_uuid:
        # Onto a physical network through another datapath's port: only that gateway
        # routes onto the segment (vna.features.edge_router), so the packet goes there
        # as the VM sent it, addressed to the router port it chose (OUTPUT's entry for
        # that exit port sends it to the gateway).
        assert path.exit_port is not None
        exit_id = interface_id(view, path.exit_port.interface_uuid)
        return Flow(Table.ROUTE, priority, make_match(match), (SetField(REG_OUTPORT, exit_id),),
                    goto=Table.TO_VM_CT, **common)
    # Per router crossed: dec_ttl, then that router's port MAC on the network it sends
    # onto.  When the k-th dec_ttl finds TTL <= 1 the switch hands the packet to the
    # agent as modified so far, so its eth_src names router k - 1 (the VM's own MAC for
    # k = 1): the time-exceeded handler below knows which router expired it.
    actions: tuple[Action, ...] = ()
    for step in path.steps:
        actions += (DecTtl(), SetField("eth_src", step.out_mac))
    if gateway is not None:  # onto a physical network here: ARP_RESOLVE reads the next hop
        actions += ((SetField(REG_NEXTHOP, int(ipaddress.IPv4Address(path.next_hop))),)
                    if path.next_hop else (Move("ipv4_dst", REG_NEXTHOP, 32),))
    # The routed packet leaves from this datapath's router: its origin flags are cleared
    # (a packet that came from the physical segment or from the gateway's peers can be
    # delivered to a remote vif or flooded onto the segment).
    return Flow(
        Table.ROUTE,
        priority,
        make_match(match),
        actions,
        goto=Table.ARP_RESOLVE,
        metadata=(view.network_id(path.network_uuid), METADATA_MASK),
        **common,
    )


def network_flows(view: View, network_uuid: str) -> list[Flow]:
    """A routed network's ARP_RESOLVE catch-all: a packet routed to an address nobody
    holds there -> the controller (ICMP host unreachable)."""
    if not topology(view).attached.get(network_uuid) or view.network(network_uuid) is None \
            or not view.is_virtual(network_uuid):  # physical: vna.features.edge_router
        return []
    match = make_match(metadata=on_network(view.network_id(network_uuid)), eth_type=ETH_IPV4)
    return [Flow(Table.ARP_RESOLVE, Prio.CATCH, match, UNREACHABLE_PUNT,
                 kind=KIND_HOST_UNREACH, obj_id=view.network_id(network_uuid))]


def interface_flows(view: View, interface_uuid: str) -> list[Flow]:
    """ARP_RESOLVE entries: routed packets get their destination MAC from the model."""
    addresses = vif_addresses(view, interface_uuid)
    if not addresses:
        return []
    obj = interface_id(view, interface_uuid)
    flows = []
    for addr in sorted(addresses, key=lambda a: (a.network_uuid, a.ipv4)):
        match = make_match(
            metadata=on_network(view.network_id(addr.network_uuid)),
            eth_type=ETH_IPV4,
            ipv4_dst=addr.ipv4,
        )
        flows.append(
            Flow(
                Table.ARP_RESOLVE,
                Prio.NORMAL,
                match,
                (SetField("eth_dst", addr.mac),),
                goto=Table.SNAT,
                kind=KIND_ARP_RESOLVE,
                obj_id=obj,
            )
        )
    return flows


def dirty(change: Change, view: View) -> set[OwnerKey]:
    """Routers' rule and the interface's own; a routed network's catch-all depends on
    which routers attach to it: every network of a changed router's component, and a
    changed network itself."""
    out = deps.routers(change, view) | deps.own_interface(change, view)
    topo = topology(view)
    for link in deps.router_links(view, change):
        for member in topo.component(link) or {link}:
            router = topo.routers.get(member)
            out |= {("network", n) for n in (router.ports if router is not None else ())}
    if change.resource == "networks":
        out.add(("network", change.uuid))
    return out


# ------------------------------------------------------------ ICMP errors

def _router_by_id(topo: Topology, router_id: int) -> Router | None:
    return next((r for r in topo.routers.values() if r.id == router_id), None)


def _vm_mac(view: View, in_port: int, network: str, ipv4: str) -> str | None:
    """The MAC of the local vif on `in_port` that holds `ipv4` on `network`."""
    for uuid, port in view.binding.ports.items():
        if port == in_port and view.is_local(uuid):
            for addr in vif_addresses(view, uuid):
                if addr.network_uuid == network and addr.ipv4 == ipv4:
                    return addr.mac
    return None


def time_exceeded(view: View, packet_in: PacketIn) -> list[PacketOut]:
    """An invalid-TTL packet-in of a ROUTE entry: ICMP time exceeded from the router
    whose dec_ttl failed, from its address on the network the packet entered it by.

    The entry belongs to the first router of the path (the cookie's obj_id) and matched
    the ingress port's MAC (eth_dst, not rewritten by ROUTE).  The path is resolved again
    for the destination address (exact: decisions only depend on which prefixes contain
    it); the packet's eth_src is the MAC the previous router sent it with, so the
    expiring router is the one after the step with that MAC (the first if none: the
    VM's own MAC)."""
    offender = icmp_errors.parse(packet_in.data)
    if offender is None or not icmp_errors.answerable(offender):
        return []
    _, router_id, _ = cookie_parts(packet_in.cookie)
    topo = topology(view)
    first = _router_by_id(topo, router_id)
    if first is None:
        return []
    gateway = next((p for p in first.ports.values()
                    if p.ingress and p.mac == offender.eth.dst), None)
    if gateway is None:
        return []
    path = _outcome(topo, first, prefix(offender.ip.dst, 32))
    if path is None:
        return []
    k = next((i + 1 for i, s in enumerate(path.steps) if s.out_mac == offender.eth.src), 0)
    if k >= len(path.steps):
        return []
    entered = gateway.network_uuid if k == 0 else path.steps[k - 1].out_network
    port = topo.routers[path.steps[k].route_link_uuid].ports.get(entered)
    vm_mac = _vm_mac(view, packet_in.in_port, gateway.network_uuid, offender.ip.src)
    if port is None or port.ipv4 is None or vm_mac is None:
        return []
    key = (view.binding.datapath_uuid, packet_in.in_port)
    if icmp_errors.limited(key, icmp_errors.TIME_EXCEEDED, icmp_errors.CODE_TTL_EXCEEDED):
        return []
    frame = icmp_errors.error_frame(offender, gateway.mac, vm_mac, port.ipv4,
                                    icmp_errors.TIME_EXCEEDED, icmp_errors.CODE_TTL_EXCEEDED)
    return [PacketOut(IN_PORT, frame)]


def _ingress(topo: Topology, router_id: int | None, mac: str) -> tuple[Router, Port] | None:
    """The router (by id, or any) and its ingress port with `mac`."""
    for router in topo.routers.values():
        if router_id is None or router.id == router_id:
            for port in router.ports.values():
                if port.ingress and port.mac == mac:
                    return router, port
    return None


def _answer(view: View, packet_in: PacketIn, offender: icmp_errors.Offender, vm_mac: str,
            gateway: Port, router_ip: str | None, type_: int, code: int) -> list[PacketOut]:
    if router_ip is None:
        return []
    key = (view.binding.datapath_uuid, packet_in.in_port)
    if icmp_errors.limited(key, type_, code):
        return []
    frame = icmp_errors.error_frame(offender, gateway.mac, vm_mac, router_ip, type_, code)
    return [PacketOut(IN_PORT, frame)]


def net_unreachable(view: View, packet_in: PacketIn) -> list[PacketOut]:
    """A ROUTE entry without a route punted the packet as the VM sent it: network
    unreachable from the router's address on the network it entered by."""
    offender = icmp_errors.parse(packet_in.data)
    if offender is None or not icmp_errors.answerable(offender):
        return []
    found = _ingress(topology(view), cookie_parts(packet_in.cookie)[1], offender.eth.dst)
    if found is None:
        return []
    _, gateway = found
    return _answer(view, packet_in, offender, offender.eth.src, gateway, gateway.ipv4,
                   icmp_errors.DEST_UNREACH, icmp_errors.CODE_NET_UNREACH)


def host_unreachable(view: View, packet_in: PacketIn) -> list[PacketOut]:
    """ARP_RESOLVE found nobody holding the destination on the network the path
    delivers to: host unreachable from the last router of the path, at its address on
    the network the packet entered it by.  The packet is as ROUTE rewrote it: eth_dst is
    still the first router's port MAC."""
    offender = icmp_errors.parse(packet_in.data)
    if offender is None or not icmp_errors.answerable(offender):
        return []
    topo = topology(view)
    found = _ingress(topo, None, offender.eth.dst)
    if found is None:
        return []
    first, gateway = found
    path = _outcome(topo, first, prefix(offender.ip.dst, 32))
    vm_mac = _vm_mac(view, packet_in.in_port, gateway.network_uuid, offender.ip.src)
    if path is None or not path.steps or vm_mac is None:
        return []
    entered = gateway.network_uuid if len(path.steps) == 1 else path.steps[-2].out_network
    port = topo.routers[path.steps[-1].route_link_uuid].ports.get(entered)
    return _answer(view, packet_in, offender, vm_mac, gateway,
                   port.ipv4 if port is not None else None,
                   icmp_errors.DEST_UNREACH, icmp_errors.CODE_HOST_UNREACH)


def packet_in(view: View, packet_in: PacketIn) -> list[PacketOut]:
    if packet_in.kind == KIND_ROUTE and packet_in.reason == "invalid_ttl":
        return time_exceeded(view, packet_in)
    if packet_in.kind == KIND_ROUTE:
        return net_unreachable(view, packet_in)
    if packet_in.kind == KIND_HOST_UNREACH:
        return host_unreachable(view, packet_in)
    return []


FEATURE = Feature(
    name="routing",
    kinds=frozenset({KIND_ROUTE, KIND_ARP_RESOLVE, KIND_HOST_UNREACH}),
    owners={"route_link": route_link_flows, "interface": interface_flows,
            "network": network_flows},
    dirty=dirty,
    packet_in=packet_in,
)
