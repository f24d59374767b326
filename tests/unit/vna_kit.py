"""Helpers for the vna unit tests: build model slices, run agents, make packets."""

from __future__ import annotations

import copy
import ipaddress
import itertools
import struct
from collections.abc import Sequence
from typing import Any

from os_ken.lib.packet import arp, ethernet, icmp, ipv4, packet, tcp, udp
from os_ken.ofproto import ofproto_v1_3, ofproto_v1_3_parser

from vna.desired import DesiredState
from vna.dirty import dirty_for_ports, dirty_owners
from vna.feature import Feature
from vna.features import FEATURES, _check
from vna.flows import Flow, by_cookie
from vna.flowsim import Outcome, Pipeline, SimError
from vna.modelstore import ModelStore
from vna.pipeline import ETH_IPV4, IP_FRAG_ANY, IP_FRAG_LATER, Table
from vna.punt import PacketIn, PacketOut, PuntStats, dispatch
from vna.routers import topology
from vna.view import _INDEXES, RESOURCES, LocalBinding, View

TUNNEL_PORT = 100
# Every table a routed packet from a local vif passes on its own datapath, in order
# (all but the mac2mac receive tables).
# An unfiltered packet routed between local vifs visits every table but the mac2mac
# receive tables, the commit tables (only allowed packets of filtered vifs go there) and
# the NAT tables after ct (only packets through a translating gateway port go there).
LOCAL_ROUTED_PATH = [t for t in Table if t not in (Table.RX_DST, Table.RX_SRC,
                                                   Table.FROM_VM_COMMIT, Table.TO_VM_COMMIT,
                                                   Table.DNAT_NEW, Table.SNAT_NEW)]


class ModelBuilder:
    """Builds a model slice in the shape vnmgr sends (docs/model-slice.md)."""

    def __init__(self) -> None:
        self.model: dict[str, dict[str, dict[str, Any]]] = {r: {} for r in RESOURCES}
        self._ids = itertools.count(1)
        self._macs = itertools.count(1)
        self._segments = itertools.count(1000)

    def snapshot(self) -> dict[str, dict[str, dict[str, Any]]]:
        return copy.deepcopy(self.model)

    def add(self, resource: str, uuid: str, **fields: Any) -> str:
        rows = self.model.setdefault(resource, {})  # also resources the registry lacks yet
        rows[uuid] = {"uuid": uuid, "id": next(self._ids), **fields}
        return uuid

    def delete(self, resource: str, uuid: str) -> None:
        del self.model[resource][uuid]

    def next_mac(self, prefix: str = "52:54:00") -> str:
        n = next(self._macs)
        return f"{prefix}:{n >> 16 & 0xFF:02x}:{n >> 8 & 0xFF:02x}:{n & 0xFF:02x}"

    def datapath(self, name: str) -> str:
        return self.add(
            "datapaths",
            f"dp-{name}",
            display_name=name,
            dpid="0x1",
            node_id=name,
            is_connected=True,
        )

    def network(self, name: str, cidr: str, mode: str = "virtual") -> str:
        net = ipaddress.IPv4Network(cidr)
        return self.add(
            "networks",
            f"nw-{name}",
            display_name=name,
            ipv4_network=str(net.network_address),
            ipv4_prefix=net.prefixlen,
            network_mode=mode,
            domain_name=None,
            segment_id=next(self._segments),
        )

    def interface(self, name: str, mode: str, dp: str | None, routing: bool = False) -> str:
        return self.add(
            "interfaces",
            f"if-{name}",
            display_name=name,
            mode=mode,
            owner_datapath_uuid=dp,
            port_name=name,
            enable_routing=routing,
        )

    def mac(self, iface: str, mac: str | None = None) -> str:
        mac = mac or self.next_mac()
        return self.add("mac_leases", f"ml-{iface}-{mac}", interface_uuid=iface, mac_address=mac)

    def ip(self, iface: str, network: str, address: str, mac_lease: str | None = None) -> str:
        return self.add(
            "ip_leases",
            f"il-{iface}-{network}-{address}",
            interface_uuid=iface,
            network_uuid=network,
            mac_lease_uuid=mac_lease,
            ipv4_address=address,
        )

    def vif(self, name: str, dp: str, network: str, address: str, mac: str | None = None,
            bound: bool = True) -> str:
        """A vif owned by `dp`, bound there (its port appeared) unless bound=False."""
        iface = self.interface(name, "vif", dp)
        lease = self.mac(iface, mac)
        self.ip(iface, network, address, lease)
        if bound:
            self.bind(iface, dp)
        return iface

    def bind(self, iface: str, dp: str, state: str = "active") -> str:
        """The claim a vna reports when the port appears (vnmgr.handlers.bindings)."""
        for uuid, row in list(self.model["active_interfaces"].items()):
            if row["interface_uuid"] == iface and (row["datapath_uuid"] == dp or state == "active"
                                                  and row["state"] == "active"):
                del self.model["active_interfaces"][uuid]
        return self.add("active_interfaces", f"ai-{iface}-{dp}", interface_uuid=iface,
                        datapath_uuid=dp, port_name=iface.removeprefix("if-"),
                        port_number=None, state=state,
                        singular=True if state == "active" else None, detail=None)

    def unbind(self, iface: str) -> None:
        for uuid in [u for u, r in self.model["active_interfaces"].items()
                     if r["interface_uuid"] == iface]:
            del self.model["active_interfaces"][uuid]

    def host(self, name: str, dp: str, network: str, address: str) -> str:
        iface = self.interface(name, "host", dp)
        self.ip(iface, network, address, self.mac(iface))
        return iface

    def mac_of(self, iface: str) -> str:
        leases = [r for r in self.model["mac_leases"].values() if r["interface_uuid"] == iface]
        return min(leases, key=lambda r: r["id"])["mac_address"]

    def router(self, name: str, ports: list[tuple[str, str]]) -> str:
        """A route_link with one simulated port per (network, gateway ip) and the
        connected route for each network."""
        link = self.add(
            "route_links", f"rl-{name}", display_name=name, mac_address=self.next_mac("02:00:00")
        )
        for network, gateway in ports:
            self.port(link, network, gateway)
        return link

    def port(self, link: str, network: str, gateway: str) -> str:
        name = f"{link}-{network}"
        iface = self.interface(name, "simulated", None, routing=True)
        self.ip(iface, network, gateway, self.mac(iface, self.next_mac("02:00:01")))
        net = self.model["networks"][network]
        self.route(link, iface, network, f"{net['ipv4_network']}/{net['ipv4_prefix']}")
        return iface

    def route(self, link: str, iface: str, network: str, cidr: str, gateway: str | None = None,
              **flags: bool) -> str:
        net = ipaddress.IPv4Network(cidr, strict=False)
        return self.add(
            "routes",
            f"rt-{link}-{network}-{net}",
            display_name=None,
            interface_uuid=iface,
            route_link_uuid=link,
            network_uuid=network,
            ipv4_network=str(net.network_address),
            ipv4_prefix=net.prefixlen,
            ingress=flags.get("ingress", True),
            egress=flags.get("egress", True),
            ipv4_gateway=gateway,
        )

    def router_port(self, link: str, network: str) -> str:
        return next(
            r["interface_uuid"]
            for r in self.model["routes"].values()
            if r["route_link_uuid"] == link and r["network_uuid"] == network
        )

    # --- dns services (docs/api.md: dns_services, dns_records); network_service below
    def dns_service(self, ns: str, public_dns: str | None = None) -> str:
        return self.add("dns_services", f"dnss-{ns.removeprefix('ns-')}",
                        network_service_uuid=ns, public_dns=public_dns)

    def dns_record(self, dnss: str, name: str, ip: str, ttl: int = 60) -> str:
        return self.add("dns_records", f"dnsr-{dnss.removeprefix('dnss-')}-{name}-{ip}",
                        dns_service_uuid=dnss, name=name, ipv4_address=ip, ttl=ttl)

    def dns_server(self, name: str, network: str, address: str,
                   public_dns: str | None = None) -> str:
        """A simulated interface leasing `address` on `network`, a dns network service
        on it and its dns_services row; returns the dns_services uuid."""
        iface = self.interface(name, "simulated", None)
        self.ip(iface, network, address, self.mac(iface, self.next_mac("02:00:53")))
        return self.dns_service(self.network_service(iface, "dns", name), public_dns)

    def dpn(self, dp: str, network: str, iface: str | None = None, mac: str | None = None) -> str:
        return self.add(
            "datapath_networks",
            f"dpn-{dp}-{network}",
            datapath_uuid=dp,
            network_uuid=network,
            broadcast_mac_address=mac or self.next_mac("0a:00:00"),
            interface_uuid=iface,
        )

    def network_service(self, iface: str, type: str, name: str | None = None) -> str:
        """A network service (dhcp, dns, router) whose address is `iface`'s lease."""
        name = name or f"{type}-{iface.removeprefix('if-')}"
        return self.add("network_services", f"ns-{name}", display_name=name,
                        interface_uuid=iface, type=type)

    def service(self, name: str, type: str, network: str, address: str) -> tuple[str, str]:
        """A simulated interface leasing `address` on `network` and a `type` network
        service on it: (service uuid, interface uuid)."""
        iface = self.interface(name, "simulated", None)
        self.ip(iface, network, address, self.mac(iface, self.next_mac("02:00:02")))
        return self.network_service(iface, type), iface

    def dprl(self, dp: str, link: str, iface: str | None = None, mac: str | None = None) -> str:
        """A datapath_route_link: `dp`'s MAC for router `link` on the underlay."""
        fields = dict(route_link_uuid=link, mac_address=mac or self.next_mac("0e:00:00"))
        return self.add("datapath_route_links", f"dprl-{dp}-{link}", datapath_uuid=dp,
                        interface_uuid=iface, **fields)


def assert_same_indexes(derived: View, fresh: View) -> None:
    """An incrementally derived View must index exactly what a fresh one does."""
    for attr in (*_INDEXES, "_dpn"):
        mine = {k: v for k, v in getattr(derived, attr).items() if v}
        theirs = {k: v for k, v in getattr(fresh, attr).items() if v}
        assert mine == theirs, f"View.updated diverged in {attr}"


class Agent:
    """One datapath's pure core, driven the way the runtime drives it."""

    def __init__(self, model: dict, binding: LocalBinding,
                 features: Sequence[Feature] = FEATURES) -> None:
        """features: compute (and take dependency rules from) only these."""
        self.store = ModelStore()
        self.store.load(model)
        self.binding = binding
        self._last: View | None = None
        self.features = tuple(features)
        self.desired = DesiredState(self.features)
        self.desired.rebuild(self.view())
        self.last_dirty: set = set()

    def view(self) -> View:
        return View(self.store.model, self.binding)

    def sync(self, model: dict) -> tuple[list[Flow], list[Flow]]:
        # Each view derives from the last one, as in the runtime (vna.agent), so what a
        # view lends the next (its router topology) is exercised over chains of events.
        old = self._last if self._last is not None else self.view()
        changes = self.store.load(model)
        new = View.updated(old, changes, self.store.model, self.binding)
        assert_same_indexes(new, self.view())
        self.last_dirty = dirty_owners(changes, old, new, self.features)
        self._last = new
        result = self.desired.update(new, self.last_dirty)
        if "routers" in new.cache:  # computed (or lent by `old`): as a fresh one
            fresh_view = self.view()  # kept alive: a Topology refers to its view weakly
            mine, fresh = new.cache["routers"], topology(fresh_view)
            assert (mine.routers, mine.attached, mine._component) == (
                fresh.routers, fresh.attached, fresh._component), "topology diverged"
        return result

    def rebind(self, binding: LocalBinding) -> tuple[list[Flow], list[Flow]]:
        self._last = None
        old, self.binding = self.binding, binding
        self.last_dirty = dirty_for_ports(old, binding, self.view(), self.features)
        return self.desired.update(self.view(), self.last_dirty)

    def full(self) -> dict[int, Flow]:
        fresh = DesiredState(self.features)
        fresh.rebuild(self.view())
        return fresh.flows()

    def send(self, packet: dict) -> Outcome:
        return Pipeline(self.desired.flows().values()).run(packet)


def two_hosts() -> ModelBuilder:
    """Datapaths dp-1 and dp-2 with underlay addresses 192.168.0.1 and .2."""
    m = ModelBuilder()
    dp1, dp2 = m.datapath("1"), m.datapath("2")
    under = m.network("underlay", "192.168.0.0/24", mode="physical")
    m.host("h1", dp1, under, "192.168.0.1")
    m.host("h2", dp2, under, "192.168.0.2")
    return m


def routed_world() -> ModelBuilder:
    """nw-1 10.1.0.0/24 (vif a on dp-1) - router rl-r - nw-2 10.2.0.0/24 (vif b on dp-2)."""
    m = two_hosts()
    nw1, nw2 = m.network("1", "10.1.0.0/24"), m.network("2", "10.2.0.0/24")
    m.vif("a", "dp-1", nw1, "10.1.0.10")
    m.vif("b", "dp-2", nw2, "10.2.0.20")
    m.router("r", [(nw1, "10.1.0.1"), (nw2, "10.2.0.1")])
    return m


SEGMENT = 20  # p2v_world: each datapath's port on the physical segment


def p2v_world() -> ModelBuilder:
    """two_hosts plus nw-1 10.1.0.0/24 (vif a on dp-1), nw-2 10.2.0.0/24 (b on dp-2), the
    physical nw-pub 172.16.0.0/24 on both datapaths (host interfaces if-p1/if-p2, port
    SEGMENT in the tests' bindings); router rl-r with a port on each, the nw-pub one
    172.16.0.4 owned by dp-1 (the gateway), and a default route via 172.16.0.1."""
    m = two_hosts()
    nw1, nw2 = m.network("1", "10.1.0.0/24"), m.network("2", "10.2.0.0/24")
    pub = m.network("pub", "172.16.0.0/24", mode="physical")
    m.vif("a", "dp-1", nw1, "10.1.0.10")
    m.vif("b", "dp-2", nw2, "10.2.0.20")
    for dp in ("1", "2"):
        m.dpn(f"dp-{dp}", pub, m.interface(f"p{dp}", "host", f"dp-{dp}"))
    link = m.router("r", [(nw1, "10.1.0.1"), (nw2, "10.2.0.1"), (pub, "172.16.0.4")])
    port = m.router_port(link, pub)
    m.model["interfaces"][port]["owner_datapath_uuid"] = "dp-1"
    m.route(link, port, pub, "0.0.0.0/0", gateway="172.16.0.1")
    return m


def agent_on(m: ModelBuilder, dp: str, ports: dict[str, int],
             features: Sequence[Feature] = FEATURES, **kw: Any) -> Agent:
    kw.setdefault("tunnel_ofport", TUNNEL_PORT)
    return Agent(m.snapshot(), LocalBinding(f"dp-{dp}", ports=ports, **kw), features)


def gw_mac(m: ModelBuilder, link: str, network: str) -> str:
    return m.mac_of(m.router_port(link, network))


def ip_packet(
    in_port: int,
    eth_src: str,
    eth_dst: str,
    ipv4_src: str,
    ipv4_dst: str,
    ttl: int = 64,
    ip_proto: int = 17,
    **extra: Any,
) -> dict:
    return dict(
        in_port=in_port,
        eth_src=eth_src,
        eth_dst=eth_dst,
        eth_type=0x0800,
        ipv4_src=ipv4_src,
        ipv4_dst=ipv4_dst,
        ip_proto=ip_proto,
        ip_ttl=ttl,
        **extra,
    )


def icmp_packet(
    in_port: int, eth_src: str, eth_dst: str, ipv4_src: str, ipv4_dst: str, icmp_type: int = 8
) -> dict:
    """An ICMP message (default: echo request, code 0)."""
    return ip_packet(
        in_port,
        eth_src,
        eth_dst,
        ipv4_src,
        ipv4_dst,
        ip_proto=1,
        icmpv4_type=icmp_type,
        icmpv4_code=0,
    )


def arp_request(in_port: int, sha: str, spa: str, tpa: str, **extra: Any) -> dict:
    return dict(
        in_port=in_port,
        eth_src=sha,
        eth_dst="ff:ff:ff:ff:ff:ff",
        eth_type=0x0806,
        arp_op=1,
        arp_sha=sha,
        arp_spa=spa,
        arp_tha="00:00:00:00:00:00",
        arp_tpa=tpa,
        **extra,
    )


# ------------------------------------------------------------------ the packet-in path

def frame_fields(frame: bytes, in_port: int) -> dict:
    """The flowsim packet (OXM field names) of an Ethernet frame, parsed with os-ken.
    As in OVS, an IPv4 fragment has ip_frag (bit 0: a fragment, bit 1: not the first)
    and only the first fragment has L4 fields (later ones match them as 0)."""
    eth, _, rest = ethernet.ethernet.parser(frame)
    if eth.ethertype == ETH_IPV4:
        ip, _, _ = ipv4.ipv4.parser(rest)
        if ip.offset:  # os-ken would parse the middle of the data as an L4 header
            return dict(in_port=in_port, eth_src=eth.src, eth_dst=eth.dst,
                        eth_type=eth.ethertype, ipv4_src=ip.src, ipv4_dst=ip.dst,
                        ip_proto=ip.proto, ip_ttl=ip.ttl, ip_dscp=ip.tos >> 2,
                        ip_frag=IP_FRAG_ANY | IP_FRAG_LATER,
                        **_LATER_L4.get(ip.proto, {}))
    pkt = packet.Packet(frame)
    eth = pkt.get_protocol(ethernet.ethernet)
    fields: dict[str, Any] = dict(in_port=in_port, eth_src=eth.src, eth_dst=eth.dst,
                                  eth_type=eth.ethertype)
    if (a := pkt.get_protocol(arp.arp)) is not None:
        fields.update(arp_op=a.opcode, arp_sha=a.src_mac, arp_spa=a.src_ip,
                      arp_tha=a.dst_mac, arp_tpa=a.dst_ip)
    if (ip := pkt.get_protocol(ipv4.ipv4)) is not None:
        fields.update(ipv4_src=ip.src, ipv4_dst=ip.dst, ip_proto=ip.proto, ip_ttl=ip.ttl,
                      ip_dscp=ip.tos >> 2, ip_frag=IP_FRAG_ANY if ip.flags & 1 else 0)
    if (u := pkt.get_protocol(udp.udp)) is not None:
        fields.update(udp_src=u.src_port, udp_dst=u.dst_port)
    if (t := pkt.get_protocol(tcp.tcp)) is not None:
        fields.update(tcp_src=t.src_port, tcp_dst=t.dst_port)
    if (i := pkt.get_protocol(icmp.icmp)) is not None:
        fields.update(icmpv4_type=i.type, icmpv4_code=i.code)
    return fields


# What OVS matches as the L4 fields of a fragment that is not the first one.
_LATER_L4 = {1: dict(icmpv4_type=0, icmpv4_code=0), 6: dict(tcp_src=0, tcp_dst=0),
             17: dict(udp_src=0, udp_dst=0)}


def punt_replies(agent: Agent, frame: bytes, in_port: int,
                 stats: PuntStats | None = None, later: Any = None, neighbors: Any = None
                 ) -> tuple[Outcome, list[PacketOut]]:
    """Run `frame` through the agent's desired flows as if it entered on `in_port`; each
    punt (a Controller action reached) becomes a PacketIn dispatched to the handler of
    the feature owning its cookie kind, among the agent's features.  Returns the
    pipeline's outcome and the frames the handlers answer with - what the switch would
    send back, without a switch.  `later` is given to the handlers as PacketIn.later
    (deferred answers, e.g. a list's append), `neighbors` as PacketIn.neighbors (a
    vna.neighbors.NeighborTable the handlers learn into)."""
    fields = frame_fields(frame, in_port)
    outcome = agent.send(fields)
    flows = by_cookie(agent.desired.flows().values())
    by_kind = _check(agent.features)
    replies: list[PacketOut] = []
    for cookie, punted in outcome.punts:
        # the switch punts the frame as rewritten so far (addresses and TTL modelled)
        data = frame if punted == fields else rewritten_frame(frame, fields, punted)
        packet_in = PacketIn(cookie=cookie, table_id=flows[cookie].table, reason="action",
                             in_port=in_port, data=data, later=later, neighbors=neighbors)
        replies += dispatch(agent.view(), packet_in, by_kind, stats or PuntStats())
    if outcome.expired is not None:  # a dec_ttl found TTL <= 1: invalid-TTL packet-in
        cookie, punted = outcome.expired
        packet_in = PacketIn(cookie=cookie, table_id=flows[cookie].table, reason="invalid_ttl",
                             in_port=in_port, data=rewritten_frame(frame, fields, punted),
                             later=later)
        replies += dispatch(agent.view(), packet_in, by_kind, stats or PuntStats())
    return outcome, replies


def rewritten_frame(frame: bytes, fields: dict, punted: dict) -> bytes:
    """`frame` as the switch sends it after the flows rewrote it up to the punt: the
    Ethernet addresses and the IPv4 TTL (what ROUTE rewrites before a dec_ttl fails)."""
    changed = {k for k, v in fields.items() if punted.get(k) != v}
    if changed - {"eth_src", "eth_dst", "ip_ttl"}:
        raise SimError(f"frame fields {sorted(changed)} rewritten: not modelled")
    eth, _, rest = ethernet.ethernet.parser(frame)
    ip, _, _ = ipv4.ipv4.parser(rest)
    header = ip.header_length * 4
    new_ip = ipv4.ipv4(version=4, header_length=ip.header_length, tos=ip.tos,
                       total_length=ip.total_length, identification=ip.identification,
                       flags=ip.flags, offset=ip.offset, ttl=punted["ip_ttl"], proto=ip.proto,
                       csum=0, src=ip.src, dst=ip.dst, option=ip.option)
    new_eth = ethernet.ethernet(dst=punted["eth_dst"], src=punted["eth_src"],
                                ethertype=eth.ethertype)
    out = packet.Packet()
    out.add_protocol(new_eth)
    out.add_protocol(new_ip)
    out.add_protocol(bytes(rest[header:]))
    out.serialize()
    return bytes(out.data)


def decode_flow_mod(message: bytes) -> Any:
    """os-ken's OFPFlowMod parsed from encoded bytes (what SwitchConnection.send_bundle
    takes): test doubles read command, table_id, cookie and instructions from it, which
    also proves the bytes parse."""
    _version, msg_type, length, xid = struct.unpack_from("!BBHI", message)
    assert msg_type == ofproto_v1_3.OFPT_FLOW_MOD and length == len(message)
    return ofproto_v1_3_parser.OFPFlowMod.parser(None, ofproto_v1_3.OFP_VERSION, msg_type,
                                                 length, xid, bytearray(message))
