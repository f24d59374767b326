"""Flow -> os-ken OpenFlow 1.3 messages.  The only module that knows os-ken's API."""

from __future__ import annotations

from typing import Any

from vna.flows import Action, Flow

FULL_COOKIE_MASK = 0xFFFF_FFFF_FFFF_FFFF


def _action(action: Action, ofp: Any, parser: Any) -> Any:
    verb = action[0]
    if verb == "output":
        port = ofp.OFPP_IN_PORT if action[1] == "IN_PORT" else action[1]
        return parser.OFPActionOutput(port, 0)
    if verb == "set_field":
        return parser.OFPActionSetField(**{action[1]: action[2]})
    if verb == "move":
        _, src, dst, n_bits = action
        return parser.NXActionRegMove(src_field=src, dst_field=dst, n_bits=n_bits)
    if verb == "dec_ttl":
        return parser.OFPActionDecNwTtl()
    raise ValueError(f"unknown action {action!r}")


def instructions(flow: Flow, datapath: Any) -> list[Any]:
    ofp, parser = datapath.ofproto, datapath.ofproto_parser
    out = []
    if flow.actions:
        actions = [_action(a, ofp, parser) for a in flow.actions]
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
        match=parser.OFPMatch(**flow.match_dict()),
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
