"""The packet-in path: packets a feature's flows punt to the controller, and its answers.

A flow punts with `punt_actions(ofport)` (the ingress port's meter, then output to the
controller), so the switch rate-limits packet-ins per VM (vna.meters).  The switch's
packet-in carries the punting flow's cookie (OpenFlow 1.3 section 7.4.1); the cookie's
kind (vna.flows, bits 63-56) names the one feature that owns the flow
(vna.features.BY_KIND), and `dispatch` calls that feature's `packet_in` handler with the
current View.  The handler returns the packets to send (PacketOut); the agent sends them
with packet-out on its worker thread (vna.agent).

Handlers parse and build frames with `os_ken.lib.packet`, never by hand.  A packet-in
of an unknown kind, of a feature without a handler, or that makes a handler raise is
dropped and counted (PuntStats), and logged once per kind, not per packet: a VM can make
these at the meter's rate.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vna.actions import IN_PORT, Action, Controller, Meter
from vna.feature import Feature
from vna.flows import cookie_parts
from vna.meters import port_meter_id
from vna.view import View

log = logging.getLogger("vna.punt")


@dataclass(frozen=True)
class PacketIn:
    """One OFPT_PACKET_IN: the punting flow's cookie and table, the reason label
    ("action", "no_match", "invalid_ttl"), the ingress ofport and the whole frame.

    `later`, when set (the agent sets it), sends an answer the handler can only give
    after returning - e.g. a DNS answer from an upstream resolver (vna.dns_forward).  It
    may be called from any thread, once per packet to send; PacketOut.port may be
    IN_PORT.  Handlers must cope with None (no deferred answers possible)."""

    cookie: int
    table_id: int
    reason: str
    in_port: int
    data: bytes
    later: Callable[[PacketOut], None] | None = field(default=None, compare=False, repr=False)
    # The agent's MAC bindings (vna.neighbors.NeighborTable), for handlers that learn or
    # ask: the agent recomputes the flows when they change.  None in tests without one.
    neighbors: Any = field(default=None, compare=False, repr=False)

    @property
    def kind(self) -> int:
        return cookie_parts(self.cookie)[0]


@dataclass(frozen=True)
class PacketOut:
    """A frame to send out of `port`: an ofport, or IN_PORT for the packet-in's ingress
    port (dispatch resolves it; a packet-out from the controller has no ingress port)."""

    port: int | str
    data: bytes


@dataclass
class PuntStats:
    """Counters of one agent's packet-in path (exported as metrics by vna.metrics).
    handled: feature name -> packet-ins it answered; dropped: cause -> packet-ins
    dropped ("unknown_kind", "no_handler", "handler_error", plus the agent's own
    "no_view", "send_failed" and "backlog"); sent: packet-outs returned."""

    handled: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    sent: int = 0
    _logged: set[tuple[str, int]] = field(default_factory=set, repr=False)

    def drop(self, cause: str, kind: int, message: str, *args: object,
             exc_info: bool = False) -> None:
        self.dropped[cause] += 1
        if (cause, kind) not in self._logged:  # once per kind: a VM controls the rate
            self._logged.add((cause, kind))
            log.warning(message + " (logged once per kind)", *args, exc_info=exc_info)


# Default counters for callers that do not keep their own (the agent keeps its own).
STATS = PuntStats()


def punt_actions(ofport: int) -> tuple[Action, ...]:
    """The actions of a flow that punts a packet which entered on `ofport`: that port's
    meter, then the controller (whole packet).  The vif's meter must exist before such
    a flow is installed (OVS rejects a flow naming an unknown meter); the agent adds
    meters before flows."""
    return (Meter(port_meter_id(ofport)), Controller())


def dispatch(
    view: View,
    packet_in: PacketIn,
    features_by_kind: Mapping[int, Feature] | None = None,
    stats: PuntStats | None = None,
) -> list[PacketOut]:
    """The packets to send in answer to `packet_in`, from the handler of the feature
    owning the punting flow's cookie kind (default: the registry, vna.features.BY_KIND,
    read at call time); [] (counted in `stats`) when there is none or it raises.
    Returned ports are ofports: IN_PORT is resolved to the ingress port."""
    stats = STATS if stats is None else stats
    if features_by_kind is None:
        # Imported here: feature modules import this one (punt_actions, PacketOut) while
        # the registry is being built.
        from vna.features import BY_KIND

        features_by_kind = BY_KIND
    kind = packet_in.kind
    feature = features_by_kind.get(kind)
    if feature is None:
        stats.drop("unknown_kind", kind, "packet-in with cookie %#018x of unknown kind %#x "
                   "(table %d, reason %s) dropped", packet_in.cookie, kind, packet_in.table_id,
                   packet_in.reason)
        return []
    if feature.packet_in is None:
        stats.drop("no_handler", kind, "packet-in of feature %s (kind %#x, table %d, "
                   "reason %s) dropped: it has no packet_in handler", feature.name, kind,
                   packet_in.table_id, packet_in.reason)
        return []
    try:
        answers = list(feature.packet_in(view, packet_in))
    except Exception:
        stats.drop("handler_error", kind, "packet-in handler of %s failed on a packet "
                   "from port %d", feature.name, packet_in.in_port, exc_info=True)
        return []
    stats.handled[feature.name] += 1
    out = [PacketOut(packet_in.in_port if a.port == IN_PORT else int(a.port), a.data)
           for a in answers]
    stats.sent += len(out)
    return out
