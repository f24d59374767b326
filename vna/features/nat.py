"""Translations (OpenVNet's static_address, and SNAT) on the gateway datapath of a router
port on a physical network.

Where: on the gateway only (vna.features.edge_router): every packet between the virtual
networks and the segment through that port crosses it, so one conntrack zone (NAT_ZONE)
holds each connection's translation, SNAT can allocate ports, and the global addresses'
MAC (the port's) appears on the segment at one place.

How (OpenVNet: "ingress" is the global side, "egress" the private one):

- inbound, DNAT: ct(nat) un-translates known connections; a new connection to a global
  address (a static_address entry; with ports, that TCP/UDP port only) is committed with
  nat(dst=private[:port]) and routed to the VM;
- outbound, SNAT: ct(nat) un-translates replies of inbound connections; a new connection
  from a private address with a global one leaves as that address (nat(src=global));
  with a `snat` translation, any other one leaves as the port's own address, conntrack
  choosing a free source port;
- `enable_route_translation` on the port (and no `passthrough` translation): new
  connections no entry translates are dropped, both ways (except to the port's own
  address: echo).  Otherwise they are routed unchanged (router_p2v) and committed
  unchanged, so their replies stay untranslated too (a host with a route to a private
  network reaches it through a snat port, as through any router: filtering is the
  security groups' job, or enable_route_translation's).
"""

from __future__ import annotations

from vna import deps
from vna.actions import Ct, Nat
from vna.feature import Feature, OwnerKey
from vna.flows import Flow, make_match
from vna.modelstore import Change
from vna.pipeline import ETH_IPV4, NAT_ZONE, PHYSICAL, Prio, Table, on_network, on_network_from
from vna.routers import Port, topology
from vna.view import Row, View

KIND_NAT = 0xB0  # obj interfaces.id: the router port's NAT flows

_L4 = ((6, "tcp_dst", "tcp_src"), (17, "udp_dst", "udp_src"))
NEW, TRK = 0x01, 0x20
NEW_CONNECTION = {"ct_state": (NEW | TRK, NEW | TRK)}


def my_gateway_port(view: View, interface_uuid: str) -> Port | None:
    """The router port on a physical network this datapath is the gateway of."""
    for router in topology(view).routers.values():
        for port in router.ports.values():
            if port.interface_uuid == interface_uuid \
                    and port.gateway_datapath == view.binding.datapath_uuid:
                return port
    return None


def interface_flows(view: View, interface_uuid: str) -> list[Flow]:
    port = my_gateway_port(view, interface_uuid)
    if port is None:
        return []
    translations = view.translations_of(interface_uuid)
    iface = view.interface(interface_uuid) or {}
    strict = bool(iface.get("enable_route_translation")) and not any(
        t.get("passthrough") for t in translations)
    if not translations and not strict:
        return []
    nid = view.network_id(port.network_uuid)
    obj = int(iface["id"])

    def flow(table: Table, prio: int, match: dict, actions: tuple = (),
             goto: Table | None = None) -> Flow:
        return Flow(table, prio, make_match(match, eth_type=ETH_IPV4), actions, goto=goto,
                    kind=KIND_NAT, obj_id=obj)

    segment = {"metadata": on_network_from(nid, PHYSICAL)}
    onto = {"metadata": on_network(nid), "eth_src": port.mac}
    flows = [
        flow(Table.DNAT, Prio.NORMAL, dict(segment, eth_dst=port.mac),
             (Ct(zone=NAT_ZONE, nat=Nat(), table=Table.DNAT_NEW),)),
        flow(Table.SNAT, Prio.NORMAL, onto, (Ct(zone=NAT_ZONE, nat=Nat(), table=Table.SNAT_NEW),)),
    ]
    for static in (s for t in translations if t.get("mode") == "static_address"
                   for s in view.static_addresses_of(t["uuid"])):
        flows += _static(flow, segment, onto, static)
    if port.ipv4 is not None and any(t.get("mode") == "snat" for t in translations):
        flows.append(flow(Table.SNAT_NEW, Prio.CATCH + 1, dict(onto, **NEW_CONNECTION),
                          (Ct(commit=True, zone=NAT_ZONE, nat=Nat("src", port.ipv4),
                              table=Table.L2_LOOKUP),)))
    if not strict:
        # Untranslated new connections are routed as they are, and committed as they are:
        # their replies then find them in the zone and are not translated mid-stream
        # (without this, a reply to an inbound connection would look like a new outbound
        # one to SNAT).
        flows += [flow(Table.DNAT_NEW, Prio.CATCH, dict(segment, **NEW_CONNECTION),
                       (Ct(commit=True, zone=NAT_ZONE, table=Table.ROUTE),)),
                  flow(Table.SNAT_NEW, Prio.CATCH, dict(onto, **NEW_CONNECTION),
                       (Ct(commit=True, zone=NAT_ZONE, table=Table.L2_LOOKUP),))]
    if strict:
        own = {a.ipv4 for a in view.addresses_of(interface_uuid)
               if a.network_uuid == port.network_uuid}
        statics_global = {s["ingress_ipv4_address"] for t in translations
                          for s in view.static_addresses_of(t["uuid"])}
        flows += [flow(Table.DNAT_NEW, Prio.CATCH + 1, dict(segment, ipv4_dst=ip),
                       goto=Table.ROUTE) for ip in sorted(own - statics_global)]
        flows += [flow(Table.DNAT_NEW, Prio.CATCH, dict(segment, **NEW_CONNECTION)),
                  flow(Table.SNAT_NEW, Prio.CATCH, dict(onto, **NEW_CONNECTION))]
    return flows


def _static(flow, segment: dict, onto: dict, row: Row) -> list[Flow]:
    """One static_address entry: its DNAT and SNAT commits (per protocol with ports)."""
    global_ip, private_ip = row["ingress_ipv4_address"], row["egress_ipv4_address"]
    global_port, private_port = row.get("ingress_port_number"), row.get("egress_port_number")
    inbound, outbound = dict(segment, **NEW_CONNECTION), dict(onto, **NEW_CONNECTION)
    if not global_port or not private_port:
        return [
            flow(Table.DNAT_NEW, Prio.NORMAL, dict(inbound, ipv4_dst=global_ip),
                 (Ct(commit=True, zone=NAT_ZONE, nat=Nat("dst", private_ip), table=Table.ROUTE),)),
            flow(Table.SNAT_NEW, Prio.NORMAL, dict(outbound, ipv4_src=private_ip),
                 (Ct(commit=True, zone=NAT_ZONE, nat=Nat("src", global_ip),
                     table=Table.L2_LOOKUP),)),
        ]
    flows = []
    for proto, dst_field, src_field in _L4:
        dnat = Nat("dst", private_ip, port_min=int(private_port))
        snat = Nat("src", global_ip, port_min=int(global_port))
        flows.append(flow(Table.DNAT_NEW, Prio.NORMAL + 1,
                          dict(inbound, ipv4_dst=global_ip, ip_proto=proto,
                               **{dst_field: int(global_port)}),
                          (Ct(commit=True, zone=NAT_ZONE, nat=dnat, table=Table.ROUTE),)))
        flows.append(flow(Table.SNAT_NEW, Prio.NORMAL + 1,
                          dict(outbound, ipv4_src=private_ip, ip_proto=proto,
                               **{src_field: int(private_port)}),
                          (Ct(commit=True, zone=NAT_ZONE, nat=snat, table=Table.L2_LOOKUP),)))
    return flows


def dirty(change: Change, view: View) -> set[OwnerKey]:
    """The router port's own rows, its translations and their entries, and the routes
    and route links that make it a gateway port here."""
    out = deps.own_interface(change, view)
    if change.resource == "translations":
        out |= deps.interfaces({r["interface_uuid"] for r in deps.rows(change)})
    elif change.resource == "translation_static_addresses":
        for row in deps.rows(change):
            translation = view.row("translations", row["translation_uuid"])
            if translation is not None:
                out.add(("interface", translation["interface_uuid"]))
    topo = topology(view)
    for link in deps.router_links(view, change):
        router = topo.routers.get(link)
        if router is not None:
            out |= deps.interfaces({p.interface_uuid for p in router.ports.values()})
    if change.resource == "routes":
        out |= deps.interfaces({r["interface_uuid"] for r in deps.rows(change)})
    return out


FEATURE = Feature(
    name="nat",
    kinds=frozenset({KIND_NAT}),
    owners={"interface": interface_flows},
    dirty=dirty,
)
