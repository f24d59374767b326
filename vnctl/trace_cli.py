"""`vnctl trace`: print the path a packet takes (vnctl.trace), for people or as JSON.

vnctl.trace (and with it the vna's flow code) is imported only when the command runs, so
every other vnctl command starts as light as before.

Exit status: 0 delivered, 1 an API failure (as every vnctl command), 2 bad input,
3 dropped (a filter, anti-spoofing, a table miss), 4 unroutable (no route, no such
address, TTL exceeded, an endpoint bound nowhere).
"""

from __future__ import annotations

import json
import urllib.parse
from typing import TYPE_CHECKING, Any

import click

from vnctl.client import Client
from vnctl.commands import Session
from vnctl.trace_model import Model, read_model

if TYPE_CHECKING:
    from vnctl.trace import Trace

EXIT = {"delivered": 0, "dropped": 3, "unroutable": 4}


def _destination(model: Model, value: str) -> str:
    """--to: an IPv4 address, or an interface uuid (its first address)."""
    if value in model["interfaces"]:
        leases = sorted((r for r in model["ip_leases"].values()
                         if r["interface_uuid"] == value), key=lambda r: r["id"])
        if not leases:
            raise click.BadParameter(f"{value} has no IPv4 address", param_hint="--to")
        return str(leases[0]["ipv4_address"])
    return value


def ui_url(client: Client, result: Trace) -> str:
    """The topology page highlighting this trace (webapi /ui/, docs/vnctl.md).

    A trace not delivered sends only what the packet reached and `drop`, where it
    stopped: the page marks the drop there instead of painting the destination (named
    by the filter that denied it) as reached."""
    shown: dict[str, Any] = {"uuids": result.uuids, "verdict": result.verdict}
    if result.verdict != "delivered":
        shown.update(uuids=result.reached, drop=result.stopped_at)
    state = json.dumps(shown, separators=(",", ":"))
    return f"{client.uri}/ui/#trace={urllib.parse.quote(state, safe='')}"


def render(result: Trace, flows: bool) -> str:
    from vnctl.trace import describe_flow

    """The human-readable path: one line per hop, then (flows) each datapath's flows in
    the order the packet hit them."""
    p = result.probe
    what = p.proto + (f" dport {p.dport}" if p.dport is not None else "")
    lines = [f"trace {what} from {p.source} to {p.destination}"]
    lines += [f"  {hop.kind:<12} {hop.text}" for hop in result.hops]
    for visit in result.visits if flows else ():
        lines.append(f"flows on {visit.datapath} (in_port {visit.in_port}):")
        lines += [f"  {describe_flow(f)}" for f in visit.flows]
    lines.append(f"verdict: {result.verdict}" + (f" ({result.reason})" if result.reason else ""))
    return "\n".join(lines)


@click.command("trace")
@click.option("--from", "source", required=True, metavar="INTERFACE_UUID",
              help="the vif the packet leaves")
@click.option("--to", "destination", required=True, metavar="IPV4|INTERFACE_UUID",
              help="destination address (or an interface: its first address)")
@click.option("--proto", type=click.Choice(["icmp", "tcp", "udp"]), default="icmp",
              show_default=True, help="icmp is an echo request")
@click.option("--dport", type=click.IntRange(1, 65535), help="tcp/udp destination port")
@click.option("--ttl", type=click.IntRange(1, 255), default=64, show_default=True)
@click.option("--transport", type=click.Choice(["tunnel", "mac2mac"]), default="tunnel",
              show_default=True, help="the vnas' [vna] transport (not in the model)")
@click.option("--flows", "show_flows", is_flag=True,
              help="also print the OpenFlow flows hit on each datapath")
@click.option("--ui", "show_ui", is_flag=True,
              help="also print the topology page's URL highlighting the path")
@click.option("--json", "as_json", is_flag=True, help="print JSON for scripts")
@click.pass_context
def trace_command(ctx: click.Context, source: str, destination: str, proto: str,
                  dport: int | None, ttl: int, transport: str, show_flows: bool,
                  show_ui: bool, as_json: bool) -> None:
    """Show the path a packet from a vif takes, computed from the model with the vna's
    own flow code (no switch access).  Exit status: 0 delivered, 3 dropped, 4
    unroutable, 2 bad input, 1 API failure."""
    from vnctl.trace import Probe, TraceError, trace

    session: Session = ctx.find_object(Session)
    as_json = as_json or session.as_json
    if dport is not None and proto == "icmp":
        raise click.BadParameter("--dport needs --proto tcp or udp", param_hint="--dport")
    if dport is None and proto != "icmp":
        # Without a port the trace would follow a packet to port 0 and could say
        # "delivered" for a port nothing listens on: make the user name one.
        raise click.BadParameter(f"--proto {proto} needs --dport", param_hint="--dport")
    model = read_model(session.client.list_all)
    probe = Probe(source, _destination(model, destination), proto, dport, ttl)
    try:
        result = trace(model, probe, transport)  # type: ignore[arg-type]
    except TraceError as exc:
        raise click.BadParameter(str(exc), param_hint=f"--{exc.field}") from None
    if as_json:
        out: dict[str, Any] = result.as_dict(flows=show_flows)
        if show_ui:
            out["ui"] = ui_url(session.client, result)
        click.echo(json.dumps(out, indent=2))
    else:
        click.echo(render(result, show_flows))
        if show_ui:
            click.echo(f"ui: {ui_url(session.client, result)}")
    ctx.exit(EXIT[result.verdict])
