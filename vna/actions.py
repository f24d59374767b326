"""Typed OpenFlow actions: the one vocabulary of the flow functions.

Feature modules build flows from these constructors; `vna.ofmsg` encodes them for the
switch and `vna.flowsim` evaluates them without one.  Both dispatch on the class, and
`tests/unit/test_vna_actions.py` checks that every class here has an encoder and an
evaluator, and that the encoder produces what OVS prints for it, so the two cannot
drift apart.

Values are plain, hashable data (ints, strings, tuples of actions); `repr` is stable,
which the cookie's content checksum relies on (`vna.flows.canonical`).

Field names are os-ken's OXM/NXM names (``eth_dst``, ``ipv4_src``, ``reg15``,
``tun_ipv4_dst``, ``ct_mark``...).  Addresses may be given as strings.
"""

from __future__ import annotations

from dataclasses import dataclass

# Output to the packet's ingress port (OFPP_IN_PORT).  OpenFlow never sends a packet back
# out of the port it came in on unless told so explicitly with this port.
IN_PORT = "IN_PORT"
# OFPCML_NO_BUFFER: the switch sends the whole packet, never a buffer id.
NO_BUFFER = 0xFFFF


@dataclass(frozen=True, slots=True)
class Output:
    """output:PORT; `port` is an ofport number or IN_PORT."""

    port: int | str


@dataclass(frozen=True, slots=True)
class SetField:
    """set_field:VALUE->FIELD (OVS fixes IPv4/L4 checksums after it)."""

    field: str
    value: int | str


@dataclass(frozen=True, slots=True)
class Move:
    """move:SRC[src_ofs..]->DST[dst_ofs..], n_bits wide (NXActionRegMove)."""

    src: str
    dst: str
    n_bits: int
    src_ofs: int = 0
    dst_ofs: int = 0


@dataclass(frozen=True, slots=True)
class DecTtl:
    """dec_ttl: an IPv4 TTL reaching 0 drops the packet and punts it with reason
    invalid_ttl (OFPR_INVALID_TTL) to a controller that asked for it."""


@dataclass(frozen=True, slots=True)
class Nat:
    """nat(src|dst=ADDR[-ADDR_MAX][:PORT[-PORT_MAX]]), only valid inside Ct.  With no
    address it reverses an existing translation (plain ``nat``)."""

    kind: str | None = None  # "src", "dst" or None (un-NAT established connections)
    addr_min: str | None = None
    addr_max: str | None = None
    port_min: int | None = None
    port_max: int | None = None


@dataclass(frozen=True, slots=True)
class Ct:
    """ct(commit,zone=ZONE|zone_src,table=TABLE,nat,exec(...)): send the packet through
    the connection tracker of one zone (an immediate zone, or read from a 16-bit field
    such as a register), optionally committing it; with `table` a copy continues there
    with ct_state/ct_zone/ct_mark set.  `exec` holds SetField actions on ct_mark or
    ct_label (commit only).  Needs ip in the flow's match (OVS rejects it otherwise)."""

    commit: bool = False
    zone: int | None = None
    zone_src: str | None = None
    table: int | None = None
    nat: Nat | None = None
    exec: tuple[SetField, ...] = ()


@dataclass(frozen=True, slots=True)
class CtClear:
    """ct_clear: forget the packet's conntrack state (ct_state back to 0)."""


@dataclass(frozen=True, slots=True)
class Controller:
    """Send the packet to the controller (output:CONTROLLER, max_len bytes, whole packet
    by default).  The packet-in carries the flow's cookie, which names the feature that
    handles it (vna.punt)."""

    max_len: int = NO_BUFFER


@dataclass(frozen=True, slots=True)
class Meter:
    """meter:ID - an OpenFlow 1.3 instruction run before the actions (encoded as
    OFPInstructionMeter); listed with the actions so the flow keeps one sequence."""

    meter_id: int


@dataclass(frozen=True, slots=True)
class Conjunction:
    """conjunction(ID, CLAUSE/N_CLAUSES): this flow is clause `clause` (1-based) of
    conjunctive match ID; a flow matching conj_id=ID runs when every clause matched."""

    conj_id: int
    clause: int
    n_clauses: int


Action = Output | SetField | Move | DecTtl | Ct | CtClear | Controller | Meter | Conjunction
ACTION_TYPES: tuple[type, ...] = (
    Output,
    SetField,
    Move,
    DecTtl,
    Ct,
    CtClear,
    Controller,
    Meter,
    Conjunction,
)


def written_fields(actions: tuple[Action, ...]) -> list[str]:
    """Fields the actions write (for prerequisite checks)."""
    out: list[str] = []
    for action in actions:
        if isinstance(action, SetField):
            out.append(action.field)
        elif isinstance(action, Move):
            out += [action.src, action.dst]
    return out
