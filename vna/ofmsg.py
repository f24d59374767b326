"""Flow -> os-ken OpenFlow 1.3 messages.  The only module that knows os-ken's API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from os_ken.ofproto import nicira_ext as nx

from vna.actions import (
    IN_PORT,
    Action,
    Conjunction,
    Controller,
    Ct,
    CtClear,
    DecTtl,
    Meter,
    Move,
    Nat,
    Output,
    SetField,
)
from vna.flows import Flow
from vna.meters import MeterSpec
from vna.ofwire import match_fields

FULL_COOKIE_MASK = 0xFFFF_FFFF_FFFF_FFFF
# OVS's nx_nat_flags (include/openflow/nicira-ext.h); os-ken does not name them.
NX_NAT_F_SRC = 1 << 0
NX_NAT_F_DST = 1 << 1


def _nat(nat: Nat, parser: Any) -> Any:
    flags = {"src": NX_NAT_F_SRC, "dst": NX_NAT_F_DST, None: 0}[nat.kind]
    kw: dict[str, Any] = {}
    if nat.addr_min is not None:
        kw["range_ipv4_min"] = nat.addr_min
        kw["range_ipv4_max"] = nat.addr_max or nat.addr_min
    if nat.port_min is not None:
        kw["range_proto_min"] = nat.port_min
        kw["range_proto_max"] = nat.port_max or nat.port_min
    return parser.NXActionNAT(flags=flags, **kw)


def _ct(ct: Ct, ofp: Any, parser: Any) -> Any:
    inner = [_nat(ct.nat, parser)] if ct.nat is not None else []
    inner += [parser.OFPActionSetField(**{a.field: a.value}) for a in ct.exec]
    return parser.NXActionCT(
        flags=nx.NX_CT_F_COMMIT if ct.commit else 0,
        zone_src=ct.zone_src or "",
        zone_ofs_nbits=nx.ofs_nbits(0, 15) if ct.zone_src else (ct.zone or 0),
        recirc_table=ofp.OFPTT_ALL if ct.table is None else ct.table,  # 255: none
        alg=0,
        actions=inner,
    )


def _port(port: int | str, ofp: Any) -> int:
    return ofp.OFPP_IN_PORT if port == IN_PORT else int(port)


# One encoder per action class (tests check every class in vna.actions has one).
ENCODERS: dict[type, Callable[[Any, Any, Any], Any]] = {
    Output: lambda a, ofp, p: p.OFPActionOutput(_port(a.port, ofp), 0),
    SetField: lambda a, ofp, p: p.OFPActionSetField(**{a.field: a.value}),
    Move: lambda a, ofp, p: p.NXActionRegMove(
        src_field=a.src, dst_field=a.dst, n_bits=a.n_bits, src_ofs=a.src_ofs, dst_ofs=a.dst_ofs
    ),
    DecTtl: lambda a, ofp, p: p.OFPActionDecNwTtl(),
    Ct: lambda a, ofp, p: _ct(a, ofp, p),
    CtClear: lambda a, ofp, p: p.NXActionCTClear(),
    Controller: lambda a, ofp, p: p.OFPActionOutput(ofp.OFPP_CONTROLLER, a.max_len),
    # On the wire the clause is 0-based (OVS prints it 1-based, as ovs-ofctl takes it).
    Conjunction: lambda a, ofp, p: p.NXActionConjunction(a.clause - 1, a.n_clauses, a.conj_id),
    # Meter is an instruction, see instructions(); listed so coverage checks see it.
    Meter: lambda a, ofp, p: p.OFPInstructionMeter(a.meter_id, ofp.OFPIT_METER),
}


def encode_action(action: Action, ofp: Any, parser: Any) -> Any:
    try:
        encoder = ENCODERS[type(action)]
    except KeyError:
        raise ValueError(f"no encoder for action {action!r}") from None
    return encoder(action, ofp, parser)


def instructions(flow: Flow, datapath: Any) -> list[Any]:
    ofp, parser = datapath.ofproto, datapath.ofproto_parser
    out = [encode_action(a, ofp, parser) for a in flow.actions if isinstance(a, Meter)]
    actions = [encode_action(a, ofp, parser) for a in flow.actions if not isinstance(a, Meter)]
    if actions:
        out.append(parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions))
    if flow.metadata is not None:
        out.append(parser.OFPInstructionWriteMetadata(*flow.metadata))
    if flow.goto is not None:
        out.append(parser.OFPInstructionGotoTable(flow.goto))
    return out  # no instructions at all = drop


def to_flow_mod(flow: Flow, datapath: Any) -> Any:
    """OFPFC_ADD: replaces any installed flow with the same table/priority/match."""
    ofp, parser = datapath.ofproto, datapath.ofproto_parser
    return parser.OFPFlowMod(
        datapath,
        cookie=flow.cookie,
        table_id=flow.table,
        command=ofp.OFPFC_ADD,
        priority=flow.priority,
        match=parser.OFPMatch(**match_fields(flow)),
        instructions=instructions(flow, datapath),
    )


def delete_by_cookie(
    table: int, cookie: int, datapath: Any, cookie_mask: int = FULL_COOKIE_MASK
) -> Any:
    """OFPFC_DELETE of the flows whose cookie matches under cookie_mask in one table
    (pass ofproto.OFPTT_ALL as table for every table)."""
    ofp, parser = datapath.ofproto, datapath.ofproto_parser
    return parser.OFPFlowMod(
        datapath,
        cookie=cookie,
        cookie_mask=cookie_mask,
        table_id=table,
        command=ofp.OFPFC_DELETE,
        out_port=ofp.OFPP_ANY,
        out_group=ofp.OFPG_ANY,
        match=parser.OFPMatch(),
    )


# --- meters (OpenFlow 1.3 section 7.3.4.4: OFPT_METER_MOD; 7.3.5.13: meter config) ----
# Flags vna writes: a rate in packets per second, with a burst size.
METER_FLAGS_MASK_NAMES = ("OFPMF_KBPS", "OFPMF_PKTPS", "OFPMF_BURST")


def meter_mod(spec: MeterSpec, datapath: Any, modify: bool = False) -> Any:
    """OFPMC_ADD (or OFPMC_MODIFY) of one pktps meter with one drop band."""
    ofp, parser = datapath.ofproto, datapath.ofproto_parser
    return parser.OFPMeterMod(
        datapath,
        command=ofp.OFPMC_MODIFY if modify else ofp.OFPMC_ADD,
        flags=ofp.OFPMF_PKTPS | ofp.OFPMF_BURST | ofp.OFPMF_STATS,
        meter_id=spec.meter_id,
        bands=[parser.OFPMeterBandDrop(rate=spec.rate, burst_size=spec.burst)],
    )


def meter_delete(meter_id: int, datapath: Any) -> Any:
    """OFPMC_DELETE of exactly one meter.  OVS deletes the flows using it too, so
    callers never pass OFPM_ALL."""
    ofp, parser = datapath.ofproto, datapath.ofproto_parser
    if meter_id >= ofp.OFPM_MAX:
        raise ValueError(f"refusing to delete virtual/all meter {meter_id:#x}")
    return parser.OFPMeterMod(datapath, command=ofp.OFPMC_DELETE, meter_id=meter_id, bands=[])


def meter_from_stats(stat: Any, ofp: Any) -> MeterSpec | None:
    """The MeterSpec of one OFPMeterConfigStats entry, or None when it is not the shape
    vna writes (kbps, no burst flag, other band types or several bands)."""
    flags = sum(getattr(ofp, name) for name in METER_FLAGS_MASK_NAMES) & stat.flags
    bands = list(stat.bands)
    if flags != ofp.OFPMF_PKTPS | ofp.OFPMF_BURST or len(bands) != 1:
        return None
    band = bands[0]
    if band.type != ofp.OFPMBT_DROP:
        return None
    return MeterSpec(stat.meter_id, band.rate, band.burst_size)
