"""`vnctl health`: GET /api/1.0/health, shown as `field  value` lines (or JSON).

Exit status 0 when the status is `ok`, 1 when `degraded` (a datapath is disconnected) or
`unavailable` (vnmgr or the database is down, the webapi answered 503), so scripts and
monitoring can use it directly.
"""

from __future__ import annotations

import click

from vnctl.client import ApiFailure
from vnctl.commands import Session
from vnctl.output import emit_row

COLUMNS = ("status", "webapi", "vnmgr", "database", "seq", "disconnected_datapaths")


@click.command("health")
@click.option("--json", "as_json", is_flag=True, help="print JSON for scripts")
@click.pass_obj
def health(session: Session, as_json: bool) -> None:
    """Whether webapi, vnmgr, the database and every datapath are up (exit 1 if not)."""
    try:
        body = session.client.call("GET", "health")
    except ApiFailure as exc:
        if exc.status != 503 or "status" not in exc.body:
            raise
        body = exc.body
    emit_row(body, COLUMNS, as_json or session.as_json)
    if body.get("status") != "ok":
        raise SystemExit(1)
