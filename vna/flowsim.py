"""A tiny OpenFlow 1.3 pipeline evaluator for tests: no switch needed.

It implements what vna flows use - priority lookup with masked matches, the typed
actions of `vna.actions` (output, set_field, move, dec_ttl, ct/ct_clear with a small
connection tracker, controller, meter, conjunction), write-metadata and goto-table - and
is strict where a real switch would be surprising: a packet matching two flows of equal
priority, a flow missing the prerequisites of a field it matches or writes, or a
backwards goto raise errors.  Fields are plain packet keys (e.g. icmpv4_type), so any
field works without special support; registers, ct_state, ct_zone and ct_mark start at
0; checksums are not modelled (OVS fixes them).

Connection tracking follows OVS: `ct(zone=Z)` looks the packet's 5-tuple up in zone Z and
sets ct_state to trk|new, or trk|est (+rpl for the reply direction) for a committed
connection; `commit` records it (with any ct_mark from exec); `table=T` continues a copy
at table T, the original carries on with the next action.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from vna.actions import (
    IN_PORT,
    Conjunction,
    Controller,
    Ct,
    CtClear,
    DecTtl,
    Meter,
    Move,
    Output,
    SetField,
    written_fields,
)
from vna.flows import Flow

Packet = dict[str, Any]

IPV4_FIELDS = {"ipv4_src", "ipv4_dst", "arp_spa", "arp_tpa", "tun_ipv4_src", "tun_ipv4_dst"}
MAC_FIELDS = {"eth_src", "eth_dst", "arp_sha", "arp_tha"}
# Fields every packet has, 0 until written (NXM registers, conntrack state).
ZERO_FIELDS = {f"reg{i}" for i in range(16)} | {"ct_state", "ct_zone", "ct_mark"}
# field prefix -> (required field, value)
PREREQUISITES = (
    ("arp_", "eth_type", 0x0806),
    ("ipv4_", "eth_type", 0x0800),
    ("ip_proto", "eth_type", 0x0800),
    ("ip_frag", "eth_type", 0x0800),
    ("icmpv4_", "ip_proto", 1),
    ("tcp_", "ip_proto", 6),
    ("udp_", "ip_proto", 17),
)
# ct_state bits (OVS: CS_NEW, CS_ESTABLISHED, CS_RELATED, CS_REPLY_DIR, CS_INVALID,
# CS_TRACKED).
CT_NEW, CT_EST, CT_REL, CT_RPL, CT_INV, CT_TRK = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
CONTROLLER = "CONTROLLER"


class SimError(AssertionError):
    pass


@dataclass
class Outcome:
    outputs: list[tuple[int, Packet]] = field(default_factory=list)
    trace: list[Flow] = field(default_factory=list)
    ttl_expired: bool = False
    # (cookie of the flow whose dec_ttl failed, the packet as modified up to it): what
    # the switch sends as an invalid-TTL packet-in
    expired: tuple[int, Packet] | None = None
    # (cookie of the punting flow, packet) for each Controller action reached
    punts: list[tuple[int, Packet]] = field(default_factory=list)
    meters: list[int] = field(default_factory=list)

    @property
    def ports(self) -> list[int]:
        return [port for port, _ in self.outputs]

    @property
    def dropped(self) -> bool:
        return not self.outputs

    def only(self) -> tuple[int, Packet]:
        if len(self.outputs) != 1:
            raise SimError(f"expected exactly one output, got {self.ports}")
        return self.outputs[0]


def _as_int(name: str, value: Any) -> int:
    if isinstance(value, int):
        return value
    if name in IPV4_FIELDS or (isinstance(value, str) and value.count(".") == 3):
        return int(ipaddress.IPv4Address(value))
    if name in MAC_FIELDS or (isinstance(value, str) and value.count(":") == 5):
        return int(value.replace(":", ""), 16)
    raise SimError(f"cannot interpret {name}={value!r}")


def field_matches(name: str, want: Any, have: Any) -> bool:
    if have is None and name in ZERO_FIELDS:
        have = 0
    if have is None:
        return False
    if isinstance(want, tuple):
        value, mask = (_as_int(name, v) for v in want)
        return _as_int(name, have) & mask == value & mask
    return _as_int(name, have) == _as_int(name, want)


def check_prerequisites(flow: Flow) -> None:
    """OVS rejects a flow matching or writing a field whose prerequisites its match does
    not establish (e.g. set_field icmpv4_type needs ip_proto=1 in the match)."""
    match = flow.match_dict()
    for name in [*match, *written_fields(flow.actions)]:
        for prefix, needed, value in PREREQUISITES:
            if name.startswith(prefix) and match.get(needed) != value:
                raise SimError(f"{name} without {needed}={value:#x} in {flow}")
    if any(isinstance(a, Ct) for a in flow.actions) and match.get("eth_type") != 0x0800:
        raise SimError(f"ct without ip in the match of {flow}")


class Pipeline:
    def __init__(self, flows: Iterable[Flow]) -> None:
        self.tables: dict[int, list[Flow]] = {}
        for flow in flows:
            check_prerequisites(flow)
            self.tables.setdefault(flow.table, []).append(flow)
        for entries in self.tables.values():
            entries.sort(key=lambda f: -f.priority)
        # zone -> {5-tuple of the original direction: ct_mark}; persists across run()
        self.conntrack: dict[int, dict[tuple, int]] = {}

    def lookup(self, table: int, packet: Packet) -> Flow | None:
        hits = [
            f
            for f in self.tables.get(table, [])
            if all(field_matches(k, v, packet.get(k)) for k, v in f.match if k != "conj_id")
        ]
        hits = _resolve_conjunctions(hits)
        if not hits:
            return None
        if len(hits) > 1 and hits[0].priority == hits[1].priority \
                and not _same_conjunctive_result(hits[0], hits[1]):
            raise SimError(f"ambiguous match in table {table}: {hits[0]} vs {hits[1]}")
        return hits[0]

    def run(self, packet: Packet) -> Outcome:
        out = Outcome()
        self._run_from(0, dict(packet, metadata=packet.get("metadata", 0)), out)
        return out

    def _run_from(self, table: int | None, pkt: Packet, out: Outcome) -> None:
        while table is not None:
            flow = self.lookup(table, pkt)
            if flow is None:
                return  # OF1.3 table miss without a miss flow: drop
            out.trace.append(flow)
            if not self._apply(flow, pkt, out):
                return
            if flow.metadata is not None:
                value, mask = flow.metadata
                pkt["metadata"] = (pkt["metadata"] & ~mask) | (value & mask)
            if flow.goto is not None and flow.goto <= table:
                raise SimError(f"goto {flow.goto} from table {table} must go forward")
            table = flow.goto

    def _apply(self, flow: Flow, pkt: Packet, out: Outcome) -> bool:
        for action in flow.actions:
            try:
                evaluate = EVALUATORS[type(action)]
            except KeyError:
                raise SimError(f"unknown action {action!r}") from None
            if evaluate(self, action, flow, pkt, out) is False:
                return False
        return True

    # --- connection tracking ------------------------------------------------------
    def _ct(self, ct: Ct, flow: Flow, pkt: Packet, out: Outcome) -> None:
        zone = ct.zone if ct.zone_src is None else int(pkt.get(ct.zone_src) or 0) & 0xFFFF
        key = _five_tuple(pkt)
        conns = self.conntrack.setdefault(zone, {})
        reverse = _reverse(key)
        if key in conns:
            state, mark = CT_TRK | CT_EST, conns[key]
        elif reverse in conns:
            state, mark = CT_TRK | CT_EST | CT_RPL, conns[reverse]
        else:
            state, mark = CT_TRK | CT_NEW, 0
        if ct.commit:
            for action in ct.exec:
                if action.field == "ct_mark":
                    mark = int(action.value)
            conns[reverse if state & CT_RPL else key] = mark
        tracked = dict(pkt, ct_state=state, ct_zone=zone, ct_mark=mark)
        if ct.table is not None:
            if ct.table <= flow.table:
                raise SimError(f"ct table {ct.table} from table {flow.table} must go forward")
            self._run_from(ct.table, tracked, out)


def _five_tuple(pkt: Packet) -> tuple:
    proto = pkt.get("ip_proto")
    ports = {6: ("tcp_src", "tcp_dst"), 17: ("udp_src", "udp_dst")}.get(proto)
    sport, dport = (pkt.get(ports[0]), pkt.get(ports[1])) if ports else (None, None)
    if proto == 1:  # ICMP: echo request and reply are one connection
        sport = dport = None
    return (pkt.get("ipv4_src"), pkt.get("ipv4_dst"), proto, sport, dport)


def _reverse(key: tuple) -> tuple:
    src, dst, proto, sport, dport = key
    return (dst, src, proto, dport, sport)


def _same_conjunctive_result(a: Flow, b: Flow) -> bool:
    """Two completed conjunctions at one priority: OVS picks either ("unpredictable"),
    which is harmless only when both do the same thing (e.g. two rules admitting one
    packet)."""
    return ("conj_id" in a.match_dict() and "conj_id" in b.match_dict()
            and (a.actions, a.goto, a.metadata) == (b.actions, b.goto, b.metadata))


def _resolve_conjunctions(hits: list[Flow]) -> list[Flow]:
    """OVS conjunctive match: flows whose actions are only conjunction() are clauses, not
    results; a conj_id=N flow matches when every clause 1..n of N had a hit."""
    clauses: dict[int, set[int]] = {}
    needed: dict[int, int] = {}
    results = []
    for flow in hits:
        conj = [a for a in flow.actions if isinstance(a, Conjunction)]
        if conj and len(conj) == len(flow.actions):
            for a in conj:
                clauses.setdefault(a.conj_id, set()).add(a.clause)
                needed[a.conj_id] = a.n_clauses
        else:
            results.append(flow)
    done_marker = object()
    done = {cid for cid, seen in clauses.items() if seen == set(range(1, needed[cid] + 1))}
    return [f for f in results if dict(f.match).get("conj_id", done_marker) is done_marker
            or dict(f.match)["conj_id"] in done]


def _output(sim: Pipeline, a: Output, flow: Flow, pkt: Packet, out: Outcome) -> None:
    port = pkt["in_port"] if a.port == IN_PORT else a.port
    # OpenFlow never sends a packet back out its ingress port unless the action says
    # IN_PORT explicitly.
    if a.port == IN_PORT or port != pkt["in_port"]:
        out.outputs.append((port, _visible(pkt)))


def _visible(pkt: Packet) -> Packet:
    return {k: v for k, v in pkt.items() if k != "metadata"}


def _move(sim: Pipeline, a: Move, flow: Flow, pkt: Packet, out: Outcome) -> None:
    if a.src_ofs or a.dst_ofs:
        raise SimError(f"bit offsets are not modelled: {a!r}")
    pkt[a.dst] = pkt.get(a.src, 0 if a.src in ZERO_FIELDS else None)


def _dec_ttl(sim: Pipeline, a: DecTtl, flow: Flow, pkt: Packet, out: Outcome) -> bool:
    ttl = pkt.get("ip_ttl", 64)
    if ttl <= 1:
        out.ttl_expired = True
        out.expired = (flow.cookie, _visible(pkt))
        return False
    pkt["ip_ttl"] = ttl - 1
    return True


def _ct_clear(sim: Pipeline, a: CtClear, flow: Flow, pkt: Packet, out: Outcome) -> None:
    pkt.update(ct_state=0, ct_zone=0, ct_mark=0)


def _conjunction(sim: Pipeline, a: Conjunction, flow: Flow, pkt: Packet, out: Outcome) -> None:
    raise SimError(f"conjunction() mixed with other actions in {flow}")


# One evaluator per action class (tests check every class in vna.actions has one).
EVALUATORS: dict[type, Callable[[Pipeline, Any, Flow, Packet, Outcome], bool | None]] = {
    Output: _output,
    SetField: lambda sim, a, flow, pkt, out: pkt.__setitem__(a.field, a.value),
    Move: _move,
    DecTtl: _dec_ttl,
    Ct: lambda sim, a, flow, pkt, out: sim._ct(a, flow, pkt, out),
    CtClear: _ct_clear,
    Controller: lambda sim, a, flow, pkt, out: out.punts.append((flow.cookie, _visible(pkt))),
    Meter: lambda sim, a, flow, pkt, out: out.meters.append(a.meter_id),
    Conjunction: _conjunction,
}


def run(flows: Iterable[Flow], packet: Packet) -> Outcome:
    return Pipeline(flows).run(packet)
