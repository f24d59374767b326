"""The `vnctl` entry point: global options, then one command group per resource."""

from __future__ import annotations

import math

import click

from vnctl.client import DEFAULT_URI, Client
from vnctl.commands import Session, resource_groups
from vnctl.health import health
from vnctl.trace_cli import trace_command


def _finite(value: float, param: click.Parameter) -> float:
    # FloatRange lets NaN through (every comparison with it is false).
    if math.isnan(value):
        raise click.BadParameter("must be a number of seconds", param=param)
    return value


def _token(value: str | None, param: click.Parameter) -> str | None:
    # An empty VNCTL_TOKEN means none; whitespace inside would make a malformed header.
    if not value:
        return None
    if value != value.strip() or any(c.isspace() for c in value):
        raise click.BadParameter("a token has no spaces", param=param)
    return value


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--webapi-uri", envvar="VNCTL_WEBAPI_URI", default=DEFAULT_URI,
              show_default=True, show_envvar=True, help="where vnet-webapi listens")
@click.option("--token", envvar="VNCTL_TOKEN", show_envvar=True, default=None,
              callback=lambda ctx, param, value: _token(value, param),
              help="bearer token of a webapi with auth = token (prefer the environment "
                   "variable: a command line shows in ps)")
@click.option("--json", "as_json", is_flag=True, help="print JSON for scripts")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True, max=86400),
              default=30.0, show_default=True, help="seconds to wait for each answer",
              callback=lambda ctx, param, value: _finite(value, param))
@click.option("--curl", "show_curl", is_flag=True,
              help="also print each request as a curl command on stderr")
@click.pass_context
def cli(ctx: click.Context, webapi_uri: str, token: str | None, as_json: bool,
        timeout: float, show_curl: bool) -> None:
    """Manage wakame-vnet through its HTTP API, in the style of OpenVNet's vnctl."""
    if "://" not in webapi_uri:
        raise click.BadParameter(f"{webapi_uri!r} has no scheme: try http://{webapi_uri}",
                                 param_hint="--webapi-uri")
    scheme = webapi_uri.split("://", 1)[0].lower()
    if scheme not in ("http", "https"):
        # urllib would speak ftp (or file, ...) to the webapi and wait --timeout for an
        # answer that never comes: the webapi talks only HTTP.
        raise click.BadParameter(f"{webapi_uri!r}: the scheme must be http or https, not "
                                 f"{scheme!r}", param_hint="--webapi-uri")
    client = Client(webapi_uri, timeout, token)
    ctx.obj = Session(client, as_json)
    if show_curl:
        ctx.call_on_close(lambda: [click.echo(line, err=True) for line in client.curl_log])


for _group in resource_groups():
    cli.add_command(_group)
cli.add_command(trace_command)
cli.add_command(health)


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="vnctl")
