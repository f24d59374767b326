"""`vnctl trace`'s engine: the path of one packet through the virtual network, computed
with the vna's own pure code (an ovn-trace for wakame-vnet).

Each datapath's flows are what its vna would install for the model (vna.desired over a
vna.view.View of the model with a made-up port binding); the packet is injected at the
source vif's port and run through them with vna.flowsim, then followed across datapaths:
a tunnel output enters the datapath whose underlay address is tun_ipv4_dst at its
tunnel port, a mac2mac output the datapath whose datapath_network or datapath_route_link
MAC is the frame's eth_dst at its underlay port.  Every flow hit is attributed to the
model object owning it (DesiredState.owner_of), so the path names model uuids.

No switch, no root, nothing but the model: `trace()` is a pure function of its inputs.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from vna import route_link_wire as wire
from vna.actions import Ct, DecTtl, SetField
from vna.desired import DATAPATH, DesiredState
from vna.flows import Flow
from vna.flowsim import Outcome, Pipeline, SimError
from vna.pipeline import KIND_MISS, Table
from vna.view import Address, LocalBinding, View

Transport = Literal["tunnel", "mac2mac"]
Verdict = Literal["delivered", "dropped", "unroutable"]
PROTOCOLS = {"icmp": 1, "tcp": 6, "udp": 17}
TUNNEL_OFPORT = 0xFFF0  # the made-up ofport of every datapath's tunnel port
FIRST_OFPORT = 1  # made-up ofports of interfaces whose binding reports none start here
SOURCE_PORT = 40000  # the transport source port of traced tcp/udp packets
# The MAC a route's upstream gateway (ipv4_gateway) is taken to answer ARP with: a vna
# learns the real one by ARP (vna.neighbors), which is not in the model.  00:00:5e:00:53
# is the range RFC 7042 sets aside for documentation.
UPSTREAM_MAC = "00:00:5e:00:53:01"
MAX_DATAPATHS = 16  # visits before a path is declared a loop
# Fields a frame carries from one datapath to the next (registers, metadata and conntrack
# state stay behind on the switch that set them).
_WIRE_FIELDS = ("eth_src", "eth_dst", "eth_type", "ipv4_src", "ipv4_dst", "ip_proto",
                "ip_ttl", "ip_dscp", "ip_frag", "tcp_src", "tcp_dst", "udp_src", "udp_dst",
                "icmpv4_type", "icmpv4_code")
_ACL_TABLES = {Table.FROM_VM_CT: "from-VM", Table.FROM_VM_ACL: "from-VM",
               Table.FROM_VM_COMMIT: "from-VM", Table.TO_VM_CT: "to-VM",
               Table.TO_VM_ACL: "to-VM", Table.TO_VM_COMMIT: "to-VM"}
_NAT_TABLES = (Table.DNAT, Table.DNAT_NEW, Table.SNAT, Table.SNAT_NEW)
# Why a packet punted to the controller from a table goes no further (the vna answers
# it; for the ICMP errors, the sender sees them).
_PUNTS = {Table.ROUTE: "no route: the router answers ICMP network unreachable",
          Table.ARP_RESOLVE: "no interface holds the address: the router answers ICMP host "
                             "unreachable",
          Table.PUNT: "answered by the vna (DHCP or DNS)"}


class TraceError(ValueError):
    """Bad input: an unknown interface, an unusable address or option (exit status 2)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Probe:
    """The packet to trace: from a vif to an IPv4 address.

    proto: icmp (an echo request), tcp or udp; dport: the tcp/udp destination port
    (None for icmp); ttl: the IPv4 TTL it leaves the VM with."""

    source: str  # interface uuid
    destination: str  # IPv4 address, dotted
    proto: str = "icmp"
    dport: int | None = None
    ttl: int = 64


@dataclass
class Hop:
    """One step of the path in logical terms: `kind` is one of source, ingress, acl,
    router, nat, transport, destination, drop; `uuids` the model rows it involves."""

    kind: str
    datapath: str | None
    text: str
    uuids: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "datapath": self.datapath, "text": self.text,
                "uuids": self.uuids}


@dataclass
class Visit:
    """The packet's run through one datapath: where it entered and the flows it hit."""

    datapath: str
    in_port: int
    packet: dict[str, Any]
    flows: list[Flow]


@dataclass
class Trace:
    """The outcome: verdict delivered (to an interface, or answered by a router port, or
    out to a physical network), dropped (a filter, anti-spoofing, a table miss) or
    unroutable (no route, no such address, TTL exceeded, the source or destination not
    bound); `reason` says why when not delivered."""

    probe: Probe
    packet: dict[str, Any]
    verdict: Verdict = "delivered"
    reason: str | None = None
    hops: list[Hop] = field(default_factory=list)
    visits: list[Visit] = field(default_factory=list)

    @property
    def uuids(self) -> list[str]:
        """Every model uuid on the path, in order of first appearance."""
        seen: dict[str, None] = {}
        for hop in self.hops:
            seen.update(dict.fromkeys(u for u in hop.uuids if u))
        return list(seen)

    @property
    def reached(self) -> list[str]:
        """The uuids the packet actually got to, in order: every hop's but the filters'
        and the drop's, which name their owners (the filtered vif, its groups), not
        places reached -- a packet denied by its destination's to-VM filter never got
        to that vif."""
        seen: dict[str, None] = {}
        for hop in self.hops:
            if hop.kind not in ("acl", "drop"):
                seen.update(dict.fromkeys(u for u in hop.uuids if u))
        return list(seen)

    @property
    def stopped_at(self) -> str | None:
        """Where a packet not delivered stopped: the datapath that dropped it, else the
        last uuid it reached (None when delivered)."""
        if self.verdict == "delivered":
            return None
        dp = self.hops[-1].datapath if self.hops and self.hops[-1].kind == "drop" else None
        reached = self.reached
        return dp or (reached[-1] if reached else None)

    def as_dict(self, flows: bool = False) -> dict[str, Any]:
        """The JSON of `vnctl trace --json`: probe, packet, verdict, reason, hops, uuids
        and (flows=True) each visited datapath's flows in the order hit."""
        out: dict[str, Any] = {
            "probe": {"from": self.probe.source, "to": self.probe.destination,
                      "proto": self.probe.proto, "dport": self.probe.dport},
            "packet": self.packet, "verdict": self.verdict, "reason": self.reason,
            "hops": [h.as_dict() for h in self.hops], "uuids": self.uuids}
        if flows:
            out["datapaths"] = [{"datapath": v.datapath, "in_port": v.in_port,
                                 "flows": [describe_flow(f) for f in v.flows]}
                                for v in self.visits]
        return out


def describe_flow(flow: Flow) -> str:
    """One flow as ovs-ofctl would roughly print it: table, priority, match, actions."""
    match = ",".join(f"{k}={_value(v)}" for k, v in flow.match)
    actions = [repr(a) for a in flow.actions]
    if flow.metadata is not None:
        actions.append(f"write_metadata:{flow.metadata[0]:#x}/{flow.metadata[1]:#x}")
    if flow.goto is not None:
        actions.append(f"goto_table:{_table(flow.goto)}")
    return (f"cookie={flow.cookie:#x} table={_table(flow.table)} priority={flow.priority}"
            f" {match or '(any)'} actions={','.join(actions) or 'drop'}")


def _value(v: Any) -> str:
    if isinstance(v, tuple):
        return "/".join(_value(x) for x in v)
    return f"{v:#x}" if isinstance(v, int) and v > 255 else str(v)


def _table(number: int) -> str:
    try:
        return f"{number}({Table(number).name})"
    except ValueError:
        return str(number)


# ------------------------------------------------------------------ the datapaths
class Datapaths:
    """Every datapath's pure vna core over one model: its View (with a made-up binding:
    each interface it hosts gets its reported port_number or a free ofport, and a tunnel
    port) and its flows, computed on first use."""

    def __init__(self, model: Mapping[str, Mapping[str, Any]],
                 transport: Transport = "tunnel") -> None:
        self.model = model
        self.transport = transport
        self.whole = View(model, LocalBinding(datapath_uuid=""))
        self._views: dict[str, View] = {}
        self._desired: dict[str, DesiredState] = {}
        self._pipelines: dict[str, Pipeline] = {}

    def view(self, dp: str) -> View:
        if dp not in self._views:
            self._views[dp] = View(self.model, LocalBinding(
                datapath_uuid=dp, transport=self.transport, ports=self._ports(dp),
                tunnel_ofport=TUNNEL_OFPORT if self.transport == "tunnel" else None,
                neighbors=self._upstream()))
        return self._views[dp]

    def _ports(self, dp: str) -> dict[str, int]:
        reported = {r["interface_uuid"]: r.get("port_number")
                    for r in self.whole.claims_on(dp).values() if r.get("state") == "active"}
        ports: dict[str, int] = {}
        taken = {p for p in reported.values() if p}
        free = (n for n in range(FIRST_OFPORT, TUNNEL_OFPORT) if n not in taken)
        for uuid in self.whole.hosted_on(dp):
            if self.whole.interface(uuid).get("mode") == "simulated":
                continue  # answered by flows, no port
            ports[uuid] = reported.get(uuid) or next(free)
        return ports

    def _upstream(self) -> dict[tuple[str, str], str]:
        """Every route's upstream gateway, as if it had answered the vna's ARP."""
        return {(r["network_uuid"], r["ipv4_gateway"]): UPSTREAM_MAC
                for r in self.model.get("routes", {}).values() if r.get("ipv4_gateway")}

    def desired(self, dp: str) -> DesiredState:
        if dp not in self._desired:
            state = DesiredState()
            state.rebuild(self.view(dp))
            self._desired[dp] = state
        return self._desired[dp]

    def pipeline(self, dp: str) -> Pipeline:
        """One pipeline per datapath for the whole trace: its conntrack persists."""
        if dp not in self._pipelines:
            self._pipelines[dp] = Pipeline(self.desired(dp).flows().values())
        return self._pipelines[dp]

    def port_owner(self, dp: str, port: int) -> str | None:
        return next((u for u, p in self.view(dp).binding.ports.items() if p == port), None)

    def owner_uuid(self, dp: str, flow: Flow) -> str | None:
        key = self.desired(dp).owner_of(flow.cookie)
        return None if key is None or key == DATAPATH else key[1]


# ------------------------------------------------------------------ the trace
def trace(model: Mapping[str, Mapping[str, Any]], probe: Probe,
          transport: Transport = "tunnel") -> Trace:
    """Trace `probe` through `model` (`{resource: {uuid: row}}`, docs/model-slice.md).

    Raises TraceError (with the offending field) for a source that is not a vif with an
    address, a destination that is not an IPv4 address, an unknown protocol, or a port
    given for icmp."""
    dps = Datapaths(model, transport)
    src = _check(dps.whole, probe)
    view = dps.whole
    dp = view.host_datapath(src.interface_uuid)
    packet = _first_packet(probe, src)
    result = Trace(probe, dict(packet))
    result.hops.append(Hop("source", dp, f"{src.interface_uuid} ({src.ipv4}, {src.mac}) on "
                           f"network {src.network_uuid}, datapath {dp or '(unbound)'}",
                           [src.interface_uuid, src.network_uuid, dp or ""]))
    if dp is None:
        return _stop(result, "unroutable", f"{src.interface_uuid} is not bound to any "
                     "datapath (no vna reported its port)")
    next_hop = _next_hop(view, src, probe.destination)
    if next_hop is None:
        return _stop(result, "unroutable", f"{probe.destination} is off network "
                     f"{src.network_uuid} and no router has a port there")
    port = dps.view(dp).binding.ports[src.interface_uuid]
    mac = _arp(dps, dp, port, src, next_hop)
    if mac is None:
        return _stop(result, "unroutable", f"nothing answers ARP for {next_hop} on "
                     f"{src.network_uuid}")
    packet["eth_dst"] = mac
    result.packet = dict(packet)
    _follow(dps, result, dp, port, packet)
    return result


def _check(view: View, probe: Probe) -> Address:
    """The source address (the vif's first); TraceError for unusable input."""
    iface = view.interface(probe.source)
    if iface is None:
        raise TraceError(f"no interface {probe.source}", "from")
    if iface.get("mode") != "vif":
        raise TraceError(f"{probe.source} is a {iface.get('mode')} interface, not a vif",
                         "from")
    addresses = view.addresses_of(probe.source)
    if not addresses:
        raise TraceError(f"{probe.source} has no IPv4 address to send from", "from")
    try:
        ipaddress.IPv4Address(probe.destination)
    except ValueError:
        raise TraceError(f"{probe.destination!r} is not an IPv4 address", "to") from None
    if probe.proto not in PROTOCOLS:
        raise TraceError(f"proto must be one of {', '.join(PROTOCOLS)}", "proto")
    if probe.dport is not None and probe.proto == "icmp":
        raise TraceError("--dport needs --proto tcp or udp", "dport")
    if probe.dport is None and probe.proto != "icmp":
        # port 0 is no port: a trace to it would be a guess, not the user's packet
        raise TraceError(f"--proto {probe.proto} needs --dport", "dport")
    if probe.dport is not None and not 0 < probe.dport < 65536:
        raise TraceError("dport must be 1..65535", "dport")
    return addresses[0]


def _first_packet(probe: Probe, src: Address) -> dict[str, Any]:
    """What the VM sends, before it knows the destination MAC."""
    packet: dict[str, Any] = dict(
        eth_src=src.mac, eth_dst="00:00:00:00:00:00", eth_type=0x0800, ipv4_src=src.ipv4,
        ipv4_dst=probe.destination, ip_proto=PROTOCOLS[probe.proto], ip_ttl=probe.ttl,
        ip_dscp=0, ip_frag=0)
    if probe.proto == "icmp":
        packet.update(icmpv4_type=8, icmpv4_code=0)
    else:
        p = probe.proto
        packet.update({f"{p}_src": SOURCE_PORT, f"{p}_dst": probe.dport})
    return packet


def _next_hop(view: View, src: Address, destination: str) -> str | None:
    """The address the VM ARPs for: the destination on its own network, else its
    network's router port (the lowest route id's)."""
    net = view.network(src.network_uuid)
    prefix = ipaddress.IPv4Network(f"{net['ipv4_network']}/{net['ipv4_prefix']}")
    if ipaddress.IPv4Address(destination) in prefix:
        return destination
    for route in view.routes_on_network(src.network_uuid):
        for addr in view.addresses_of(route["interface_uuid"]):
            if addr.network_uuid == src.network_uuid:
                return addr.ipv4
    return None


def _arp(dps: Datapaths, dp: str, port: int, src: Address, address: str) -> str | None:
    """The MAC the source datapath's ARP responder answers for `address` (None: no
    answer).  A separate pipeline: ARP leaves no conntrack state."""
    request = dict(in_port=port, eth_src=src.mac, eth_dst="ff:ff:ff:ff:ff:ff",
                   eth_type=0x0806, arp_op=1, arp_sha=src.mac, arp_spa=src.ipv4,
                   arp_tha="00:00:00:00:00:00", arp_tpa=address)
    outcome = Pipeline(dps.desired(dp).flows().values()).run(request)
    for out_port, reply in outcome.outputs:
        if out_port == port and reply.get("arp_op") == 2:
            return str(reply["arp_sha"])
    return None


def _stop(result: Trace, verdict: Verdict, reason: str, dp: str | None = None,
          uuids: list[str] | None = None) -> Trace:
    result.verdict, result.reason = verdict, reason
    result.hops.append(Hop("drop", dp, reason, uuids or []))
    return result


def _follow(dps: Datapaths, result: Trace, dp: str, port: int, packet: dict[str, Any]) -> None:
    """Run the packet through `dp` entering at `port`, then wherever it is sent."""
    for _ in range(MAX_DATAPATHS):
        entered = dict(packet, in_port=port)
        try:
            outcome = dps.pipeline(dp).run(entered)
        except SimError as exc:
            _stop(result, "dropped", f"the flows of {dp} are inconsistent: {exc}", dp)
            return
        result.visits.append(Visit(dp, port, entered, outcome.trace))
        _describe(dps, result, dp, entered, outcome)
        onward = _deliver(dps, result, dp, entered, outcome)
        if onward is None:
            return
        dp, port, packet = onward
    _stop(result, "dropped", f"the packet crossed {MAX_DATAPATHS} datapaths: a loop")


def _describe(dps: Datapaths, result: Trace, dp: str, packet: dict[str, Any],
              outcome: Outcome) -> None:
    """Logical hops of one datapath's run: filters, routers crossed, NAT."""
    ttl = packet.get("ip_ttl", 64)
    for stage in ("from-VM", "to-VM"):
        flows = [f for f in outcome.trace if _ACL_TABLES.get(f.table) == stage
                 and f.kind != KIND_MISS]
        if flows:
            owners = _owners(dps, dp, flows)
            allowed = outcome.trace[-1] not in flows or outcome.trace[-1].goto is not None
            verdict = "allowed" if allowed else "denied"
            result.hops.append(Hop("acl", dp, f"{stage} filter ({', '.join(owners) or dp}): "
                                   f"{verdict}", owners))
    for flow in outcome.trace:
        if flow.table == Table.ROUTE and any(isinstance(a, DecTtl) for a in flow.actions):
            ttl = _routers(dps, result, dp, flow, ttl)
    for flow in outcome.trace:
        nat = next((a.nat for a in flow.actions if isinstance(a, Ct) and a.nat is not None
                    and a.nat.kind is not None), None)
        if flow.table in _NAT_TABLES and nat is not None:
            owners = _owners(dps, dp, [flow])
            field = "ipv4_src" if nat.kind == "src" else "ipv4_dst"  # S(rc)NAT, D(st)NAT
            to = nat.addr_min + (f":{nat.port_min}" if nat.port_min else "")
            result.hops.append(Hop("nat", dp, f"{nat.kind[0].upper()}NAT by "
                                   f"{', '.join(owners) or dp}: {packet.get(field)} -> {to}",
                                   owners))


def _owners(dps: Datapaths, dp: str, flows: list[Flow]) -> list[str]:
    return list(dict.fromkeys(u for f in flows if (u := dps.owner_uuid(dp, f))))


def _routers(dps: Datapaths, result: Trace, dp: str, flow: Flow, ttl: int) -> int:
    """One hop per router of a ROUTE flow: each dec_ttl is followed by eth_src := the
    router's port MAC on the next network (vna.features.routing).

    The hop names the ingress port too (the router's port on the network the packet
    comes from: the previous router's egress network, else the source's), so the
    highlighted path on the topology page runs vif - network - port - router - port
    without a gap."""
    view = dps.whole
    pending = False
    network_in = next((u for h in reversed(result.hops) if h.kind == "router"
                       for u in h.uuids if view.network(u)), result.hops[0].uuids[1])
    for action in flow.actions:
        if isinstance(action, DecTtl):
            pending, ttl = True, ttl - 1
        elif pending and isinstance(action, SetField) and action.field == "eth_src":
            pending = False
            port = _interface_with_mac(view, str(action.value))
            routes = view.routes_of_interface(port) if port else []
            link = routes[0]["route_link_uuid"] if routes else dps.owner_uuid(dp, flow)
            network = routes[0]["network_uuid"] if routes else None
            ingress = next((r["interface_uuid"] for r in view.routes_on_network(network_in)
                            if r["route_link_uuid"] == link), None)
            result.hops.append(Hop(
                "router", dp, f"router {link}: " + (f"in port {ingress}, " if ingress else "")
                + f"out port {port} onto network {network} (TTL {ttl + 1} -> {ttl})",
                [u for u in (ingress, link, port, network) if u]))
            network_in = network or network_in
    return ttl


def _interface_with_mac(view: View, mac: str) -> str | None:
    for row in view.model.get("mac_leases", {}).values():
        if row["mac_address"].lower() == mac.lower():
            return row["interface_uuid"]
    return None


def _deliver(dps: Datapaths, result: Trace, dp: str, packet: dict[str, Any],
             outcome: Outcome) -> tuple[str, int, dict[str, Any]] | None:
    """Record where the run ended; the next (datapath, in_port, packet) if the packet
    crosses to another datapath."""
    if outcome.ttl_expired:
        _stop(result, "unroutable", "TTL exceeded: the router answers ICMP time exceeded", dp)
        return None
    if not outcome.outputs:
        _why_not(dps, result, dp, outcome)
        return None
    onward = None
    for port, sent in outcome.outputs:
        if port == packet["in_port"]:  # answered where it came from (a router port)
            port_iface = _interface_with_mac(dps.whole, str(sent.get("eth_src")))
            owner = [u for u in (*_owners(dps, dp, outcome.trace[-1:]), port_iface) if u]
            result.hops.append(Hop("destination", dp, f"answered by {', '.join(owner)} "
                                   f"({sent.get('eth_src')}) on {dp}", owner))
            continue
        if port == TUNNEL_OFPORT:
            onward = onward or _over_tunnel(dps, result, dp, sent)
            continue
        iface = dps.port_owner(dp, port)
        row = dps.whole.interface(iface) or {}
        if row.get("mode") == "vif":
            nets = sorted(dps.whole.networks_of(iface))
            result.hops.append(Hop("destination", dp, f"delivered to {iface} on {dp} "
                                   f"(port {port}, eth_dst {sent.get('eth_dst')})",
                                   [iface, dp, *nets]))
            continue
        onward = onward or _over_wire(dps, result, dp, iface, sent)
    if onward is None and not any(h.kind == "destination" for h in result.hops):
        if result.verdict == "delivered" and result.hops[-1].kind != "drop":
            _stop(result, "dropped", "sent nowhere the trace can follow", dp)
    return onward


def _over_tunnel(dps: Datapaths, result: Trace, dp: str, sent: dict[str, Any]
                 ) -> tuple[str, int, dict[str, Any]] | None:
    peer_ip = sent.get("tun_ipv4_dst")
    peer = next((d for d in dps.whole.uuids("datapaths")
                 if dps.whole.underlay_ip(d) == peer_ip), None)
    if peer is None:
        _stop(result, "dropped", f"tunnelled to {peer_ip}, which is no datapath's underlay "
              "address", dp)
        return None
    result.hops.append(Hop("transport", dp, f"tunnel {dp} ({dps.whole.underlay_ip(dp)}) -> "
                           f"{peer} ({peer_ip}), tunnel_id {sent.get('tunnel_id')}",
                           [dp, peer]))
    frame = {k: sent[k] for k in _WIRE_FIELDS if k in sent}
    frame.update(tunnel_id=sent.get("tunnel_id"), tun_ipv4_dst=peer_ip,
                 tun_ipv4_src=dps.whole.underlay_ip(dp))
    return peer, TUNNEL_OFPORT, frame


def _over_wire(dps: Datapaths, result: Trace, dp: str, iface: str | None,
               sent: dict[str, Any]) -> tuple[str, int, dict[str, Any]] | None:
    """A frame out of a host interface: mac2mac to the datapath owning its eth_dst, or
    out to a physical network."""
    mac = str(sent.get("eth_dst", "")).lower()
    frame = {k: sent[k] for k in _WIRE_FIELDS if k in sent}
    for row in dps.model.get("datapath_networks", {}).values():
        if row["broadcast_mac_address"].lower() == mac and row["datapath_uuid"] != dp:
            peer = row["datapath_uuid"]
            port = dps.view(peer).underlay_port(row["network_uuid"])
            return _wire_hop(result, dp, peer, port, iface, mac, frame)
    for row in dps.model.get("datapath_route_links", {}).values():
        if row["mac_address"].lower() == mac and row["datapath_uuid"] != dp:
            peer = row["datapath_uuid"]
            port = wire.underlay_port(dps.view(peer), row["route_link_uuid"])
            return _wire_hop(result, dp, peer, port, iface, mac, frame)
    nets = sorted({*dps.whole.networks_of(iface),
                   *(r["network_uuid"] for r in dps.whole.dpns_using_interface(iface)
                     if r["datapath_uuid"] == dp)}) if iface else []
    result.hops.append(Hop("destination", dp, f"out of {iface} on {dp} to the physical "
                           f"network {', '.join(nets) or '?'} (eth_dst {mac})",
                           [u for u in (iface, dp, *nets) if u]))
    return None


def _wire_hop(result: Trace, dp: str, peer: str, port: int | None, iface: str | None,
              mac: str, frame: dict[str, Any]) -> tuple[str, int, dict[str, Any]] | None:
    if port is None:
        _stop(result, "dropped", f"mac2mac to {peer}, which has no underlay port", dp)
        return None
    result.hops.append(Hop("transport", dp, f"mac2mac {dp} -> {peer} out of {iface} "
                           f"(eth_dst {mac})", [dp, peer]))
    return peer, port, frame


def _why_not(dps: Datapaths, result: Trace, dp: str, outcome: Outcome) -> None:
    """A run that sent nothing: punted (an ICMP error, a service), filtered or missed."""
    if outcome.punts:
        cookie = outcome.punts[0][0]
        flow = next(f for f in outcome.trace if f.cookie == cookie)
        owners = _owners(dps, dp, [flow])
        reason = _PUNTS.get(Table(flow.table), f"punted to the vna from {_table(flow.table)}")
        _stop(result, "unroutable", reason, dp, owners)
        return
    if not outcome.trace:
        _stop(result, "dropped", f"no flow of {dp} takes the packet in", dp)
        return
    last = outcome.trace[-1]
    owners = _owners(dps, dp, [last])
    if last.goto is not None:
        reason = f"no flow matches in table {_table(last.goto)}"
    elif last.table in _ACL_TABLES:
        stage = _ACL_TABLES[last.table]
        owners = _owners(dps, dp, [f for f in outcome.trace if _ACL_TABLES.get(f.table) == stage])
        groups = [g for o in owners for g in dps.whole.security_groups_of(o)]
        owners = list(dict.fromkeys([*owners, *groups]))
        reason = f"denied by the {stage} filter of {', '.join(owners) or dp}"
    else:
        reason = f"dropped in table {_table(last.table)}"
    _stop(result, "dropped", reason, dp, owners)
