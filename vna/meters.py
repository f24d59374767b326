"""Per-port OpenFlow meters: every local vif gets one, so a VM cannot flood the agent.

A flow that sends packets to the controller runs the meter of the port the packet came
in on first (vna.punt.punt_actions), so packet-ins are rate-limited per VM in the switch,
before they cost the agent anything.

Meter ids: a local vif's meter id is its ofport (`port_meter_id`).  OVS ofports are
1..0xfeff and OpenFlow 1.3 meter ids 1..0xffff0000 (OFPM_MAX, spec section 7.3.4.4), so
ids above 0xffff are free for meters that are not per port.

Band: one OFPMBT_DROP band in packets per second with a burst (OFPMF_PKTPS|OFPMF_BURST,
spec 7.3.4.4); packets over rate x time + burst are dropped.  Rate and burst come from
vna.conf ([vna] punt_meter_rate, punt_meter_burst; defaults 100 pps, 100 packets).

The desired meters are a pure function of the View (its LocalBinding and the interfaces'
modes); `plan` diffs them against what the switch holds.  Deleting a meter in OVS also
deletes every flow that uses it, so the syncer only ever deletes stale meters one by one
(never OFPM_ALL), and deletes after the flow changes, adds before them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from vna.view import View

log = logging.getLogger("vna.meters")

DEFAULT_RATE_PPS = 100
DEFAULT_BURST_PACKETS = 100
# OVS ofports a vif can have (OFPP_MAX in OpenFlow 1.0 terms, which OVS keeps).
MAX_OFPORT = 0xFEFF


@dataclass(frozen=True)
class MeterSpec:
    """One meter as the switch holds it: a drop band of `rate` packets/s with `burst`
    packets of burst."""

    meter_id: int
    rate: int
    burst: int


@dataclass(frozen=True)
class MeterConfig:
    """[vna] punt_meter_rate (packets/s) and punt_meter_burst (packets)."""

    rate: int = DEFAULT_RATE_PPS
    burst: int = DEFAULT_BURST_PACKETS

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 0:
            raise ValueError(f"punt meter rate must be > 0 and burst >= 0, got {self}")


def port_meter_id(ofport: int) -> int:
    """The meter id of a local vif's port (the ofport itself)."""
    if not 0 < ofport <= MAX_OFPORT:
        raise ValueError(f"ofport {ofport} has no port meter (1..{MAX_OFPORT:#x})")
    return ofport


# The datapath-wide meter of the distributed router's ICMP errors (vna.icmp_errors):
# destination-unreachable punts come from ROUTE entries (per router port) and ARP_RESOLVE
# (per network), not from one vif's flows, so they share this meter.  Present whenever
# some router has a port (the only case such flows exist).
ICMP_ERROR_METER_ID = 0x10000


def _is_vif(view: View, interface_uuid: str) -> bool:
    iface = view.interface(interface_uuid)
    return iface is not None and iface.get("mode") == "vif"


def desired_meters(view: View | None, config: MeterConfig) -> dict[int, MeterSpec]:
    """meter id -> spec: one per local vif port bound on this bridge, plus the ICMP
    error meter when there is a router ({} without a view)."""
    if view is None:
        return {}
    out: dict[int, MeterSpec] = {}
    # Imported here: vna.routers is the topology's module, heavier than this one.
    from vna.routers import topology

    if any(topology(view).attached.values()):
        out[ICMP_ERROR_METER_ID] = MeterSpec(ICMP_ERROR_METER_ID, config.rate, config.burst)
    for uuid in view.binding.ports:
        ofport = view.ofport(uuid)  # None unless hosted on this datapath
        if ofport is not None and _is_vif(view, uuid) and 0 < ofport <= MAX_OFPORT:
            meter_id = port_meter_id(ofport)
            out[meter_id] = MeterSpec(meter_id, config.rate, config.burst)
    return out


@dataclass
class MeterPlan:
    """What to send: `add` and `modify` before the flow changes, `delete` (ids) after."""

    add: list[MeterSpec] = field(default_factory=list)
    modify: list[MeterSpec] = field(default_factory=list)
    delete: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.add or self.modify or self.delete)


def plan(desired: dict[int, MeterSpec], installed: dict[int, MeterSpec | None]) -> MeterPlan:
    """The diff from `installed` to `desired`.  An installed meter whose bands vna does
    not write (value None, e.g. kbps or two bands) is modified like a changed one."""
    return MeterPlan(
        add=[desired[i] for i in sorted(desired.keys() - installed.keys())],
        modify=[desired[i] for i in sorted(desired.keys() & installed.keys())
                if installed[i] != desired[i]],
        delete=sorted(installed.keys() - desired.keys()),
    )
