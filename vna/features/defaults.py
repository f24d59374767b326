"""Datapath-wide flows: explicit table misses, so dump-flows shows every decision."""

from __future__ import annotations

from vna.flows import Flow, make_match
from vna.pipeline import ETH_ARP, Kind, Prio, Table
from vna.view import View


def _flow(table: Table, priority: int, goto: Table | None = None, **match: object) -> Flow:
    return Flow(table, priority, make_match(match), goto=goto, kind=Kind.DEFAULTS)


def datapath_flows(view: View) -> list[Flow]:
    del view  # the defaults do not depend on the model
    return [
        _flow(Table.CLASSIFY, Prio.MISS),
        _flow(Table.ANTISPOOF, Prio.MISS),
        # Virtual networks answer ARP themselves and never let other ARP through;
        # physical networks override this per network (vna.features.arp).
        _flow(Table.ARP, Prio.CATCH, eth_type=ETH_ARP),
        _flow(Table.ARP, Prio.MISS, goto=Table.ROUTE),
        _flow(Table.ROUTE, Prio.MISS, goto=Table.L2_LOOKUP),
        _flow(Table.NEXTHOP, Prio.MISS),
        _flow(Table.RX_DST, Prio.MISS),
        _flow(Table.RX_SRC, Prio.MISS),
        _flow(Table.L2_LOOKUP, Prio.MISS),
    ]
