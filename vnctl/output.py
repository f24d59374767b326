"""Rendering rows: aligned tables for people, JSON for scripts."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import click

Row = dict[str, Any]


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    # One line per row: a multi-line text (a security group's rules, one per line) shows
    # its lines comma-separated, as the rule syntax also reads them.
    return ", ".join(line.strip() for line in str(value).splitlines() if line.strip()) \
        if "\n" in str(value) else str(value)


def table(rows: Sequence[Row], columns: Sequence[str]) -> str:
    grid = [list(columns)] + [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in grid) for i in range(len(columns))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip()
                     for line in grid)


def record(row: Row, columns: Sequence[str]) -> str:
    """One row as `field  value` lines: the listed columns first, then anything else the
    API returned (nested leases, agent status), so `show UUID` hides nothing."""
    keys = [c for c in columns if c in row] + [k for k in row if k not in columns]
    width = max((len(k) for k in keys), default=0)
    return "\n".join(f"{k.ljust(width)}  {cell(row[k])}" for k in keys)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))


def emit_rows(rows: Sequence[Row], columns: Sequence[str], as_json: bool) -> None:
    if as_json:
        emit_json(list(rows))
    elif rows:
        click.echo(table(rows, columns))


def emit_row(row: Row, columns: Sequence[str], as_json: bool) -> None:
    if as_json:
        emit_json(row)
    else:
        click.echo(record(row, columns))


@dataclass(frozen=True)
class ShowExtra:
    """More than the API's row for one resource's `show`: `enrich` adds raw data (kept in
    --json output), `display` turns it into the table cells of `columns`."""

    columns: tuple[str, ...]
    enrich: Callable[[Any, list[Row]], list[Row]]  # (Client, rows) -> rows
    display: Callable[[Row], Row]
