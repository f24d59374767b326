"""A tiny OpenFlow 1.3 pipeline evaluator for tests: no switch needed.

It implements what vna flows use - priority lookup with masked matches, apply-actions
(output, set_field, move, dec_ttl), write-metadata and goto-table - and is strict
where a real switch would be surprising: a packet matching two flows of equal
priority, a flow missing the prerequisites of a field it matches or writes, or a
backwards goto raise errors.  Fields are plain packet keys (e.g. icmpv4_type), so any
field works without special support; checksums are not modelled (OVS fixes them).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from vna.flows import Flow

Packet = dict[str, Any]

IPV4_FIELDS = {"ipv4_src", "ipv4_dst", "arp_spa", "arp_tpa", "tun_ipv4_src", "tun_ipv4_dst"}
MAC_FIELDS = {"eth_src", "eth_dst", "arp_sha", "arp_tha"}
# field prefix -> (required field, value)
PREREQUISITES = (
    ("arp_", "eth_type", 0x0806),
    ("ipv4_", "eth_type", 0x0800),
    ("ip_proto", "eth_type", 0x0800),
    ("icmpv4_", "ip_proto", 1),
)


class SimError(AssertionError):
    pass


@dataclass
class Outcome:
    outputs: list[tuple[int, Packet]] = field(default_factory=list)
    trace: list[Flow] = field(default_factory=list)
    ttl_expired: bool = False

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
    if have is None:
        return False
    if isinstance(want, tuple):
        value, mask = (_as_int(name, v) for v in want)
        return _as_int(name, have) & mask == value & mask
    return _as_int(name, have) == _as_int(name, want)


def _written_fields(flow: Flow) -> list[str]:
    out = []
    for action in flow.actions:
        if action[0] == "set_field":
            out.append(action[1])
        elif action[0] == "move":
            out += action[1:3]
    return out


def check_prerequisites(flow: Flow) -> None:
    """OVS rejects a flow matching or writing a field whose prerequisites its match does
    not establish (e.g. set_field icmpv4_type needs ip_proto=1 in the match)."""
    match = flow.match_dict()
    for name in [*match, *_written_fields(flow)]:
        for prefix, needed, value in PREREQUISITES:
            if name.startswith(prefix) and match.get(needed) != value:
                raise SimError(f"{name} without {needed}={value:#x} in {flow}")


class Pipeline:
    def __init__(self, flows: Iterable[Flow]) -> None:
        self.tables: dict[int, list[Flow]] = {}
        for flow in flows:
            check_prerequisites(flow)
            self.tables.setdefault(flow.table, []).append(flow)
        for entries in self.tables.values():
            entries.sort(key=lambda f: -f.priority)

    def lookup(self, table: int, packet: Packet) -> Flow | None:
        hits = [
            f
            for f in self.tables.get(table, [])
            if all(field_matches(k, v, packet.get(k)) for k, v in f.match)
        ]
        if not hits:
            return None
        if len(hits) > 1 and hits[0].priority == hits[1].priority:
            raise SimError(f"ambiguous match in table {table}: {hits[0]} vs {hits[1]}")
        return hits[0]

    def run(self, packet: Packet) -> Outcome:
        pkt = dict(packet, metadata=packet.get("metadata", 0))
        out = Outcome()
        table: int | None = 0
        while table is not None:
            flow = self.lookup(table, pkt)
            if flow is None:
                return out  # OF1.3 table miss without a miss flow: drop
            out.trace.append(flow)
            if not self._apply(flow, pkt, out):
                return out
            if flow.metadata is not None:
                value, mask = flow.metadata
                pkt["metadata"] = (pkt["metadata"] & ~mask) | (value & mask)
            if flow.goto is not None and flow.goto <= table:
                raise SimError(f"goto {flow.goto} from table {table} must go forward")
            table = flow.goto
        return out

    @staticmethod
    def _apply(flow: Flow, pkt: Packet, out: Outcome) -> bool:
        for action in flow.actions:
            verb = action[0]
            if verb == "output":
                port = pkt["in_port"] if action[1] == "IN_PORT" else action[1]
                # OpenFlow never sends a packet back out its ingress port unless the
                # action says IN_PORT explicitly.
                if action[1] == "IN_PORT" or port != pkt["in_port"]:
                    out.outputs.append((port, {k: v for k, v in pkt.items() if k != "metadata"}))
            elif verb == "set_field":
                pkt[action[1]] = action[2]
            elif verb == "move":
                pkt[action[2]] = pkt.get(action[1])
            elif verb == "dec_ttl":
                ttl = pkt.get("ip_ttl", 64)
                if ttl <= 1:
                    out.ttl_expired = True
                    return False
                pkt["ip_ttl"] = ttl - 1
            else:
                raise SimError(f"unknown action {action!r}")
        return True


def run(flows: Iterable[Flow], packet: Packet) -> Outcome:
    return Pipeline(flows).run(packet)
