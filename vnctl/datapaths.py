"""`datapaths show` also tells which vna runs each datapath and how far behind it is.

vnmgr knows what each vna last reported (applied event seq, switch connection) and the
webapi serves it as `GET /datapaths/<uuid>/status` -> `{..., "agent": {connected, lag,
age, applied_seq, flows, ...} | null}`. If a future webapi puts `agent` in the datapath
row itself, that is used and the extra request is skipped.
"""

from __future__ import annotations

import click

from vnctl.client import ApiFailure, Client
from vnctl.output import Row, ShowExtra

EXPECTED = ("GET /api/1.0/datapaths/<uuid>/status answering {\"agent\": {\"connected\": bool, "
            "\"lag\": int, \"age\": float}} (or an \"agent\" field in the datapath row)")


def enrich(client: Client, rows: list[Row]) -> list[Row]:
    enriched, missing = [], False
    for row in rows:
        if "agent" not in row and not missing:
            try:
                status = client.call("GET", f"datapaths/{row['uuid']}/status")
            except ApiFailure as exc:
                # The row was just read, so a 404/405 here means the route is absent.
                if exc.status not in (404, 405):
                    raise
                missing = True
            else:
                if "agent" in status:
                    row = {**row, "agent": status["agent"]}
                else:
                    missing = True
        enriched.append(row)
    if missing:
        click.echo(f"note: this webapi reports no vna status; vnctl expected {EXPECTED}",
                   err=True)
    return enriched


def display(row: Row) -> Row:
    if "agent" not in row:
        return {"vna": "?", "lag": "?", "report_age": "?", "unreachable": "?"}
    agent = row["agent"]
    if agent is None:  # no vna with this node_id has reported since vnmgr started
        return {"vna": "none", "lag": None, "report_age": None, "unreachable": None}
    age = agent.get("age")
    return {
        # `connected`: the datapath's bridge holds its OpenFlow connection to the vna.
        "vna": "connected" if agent.get("connected") else "no-switch",
        "lag": agent.get("lag"),
        # A vna reports every few seconds; a growing age means it has stopped.
        "report_age": f"{age:.0f}s" if isinstance(age, int | float) else None,
        # Remote interfaces this datapath's transport cannot send to (vna.reachability).
        "unreachable": unreachable(agent),
    }


def unreachable(agent: Row) -> str | None:
    """`if-x(nw-b),...` (one entry per interface and network; the reasons are in the
    `agent` field), then `+N` when the vna listed only the first ones; None when
    everything is reachable."""
    entries = agent.get("unreachable") or []
    shown = [f"{u.get('interface_uuid')}({u.get('network_uuid')})" for u in entries]
    more = int(agent.get("unreachable_total") or len(entries)) - len(entries)
    if more > 0:
        shown.append(f"+{more}")
    return ",".join(shown) or None


AGENT_STATUS = ShowExtra(("vna", "lag", "report_age", "unreachable"), enrich, display)
