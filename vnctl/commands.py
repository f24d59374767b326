"""The verbs add/show/del/modify, each built once for any Target."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from vnctl import options
from vnctl.client import Client, VnctlError
from vnctl.datapaths import AGENT_STATUS
from vnctl.interfaces import BINDING
from vnctl.output import Row, ShowExtra, emit_row, emit_rows
from vnctl.targets import Target, children_of, top_level

SHOW_EXTRAS: dict[str, ShowExtra] = {"datapaths": AGENT_STATUS, "interfaces": BINDING}


@dataclass
class Session:
    client: Client
    as_json: bool = False


def _session(values: dict[str, Any]) -> Session:
    session: Session = click.get_current_context().find_object(Session)
    if values.pop("as_json", False):
        session.as_json = True
    return session


JSON_OPTION = click.Option(["--json", "as_json"], is_flag=True, help="print JSON for scripts")


def _arg(dest: str, metavar: str, *, required: bool = True, many: bool = False) -> click.Argument:
    # An explicit metavar replaces click's own, so the optional brackets are ours to add.
    shown = metavar.upper() + ("..." if many else "")
    return click.Argument([dest], metavar=shown if required else f"[{shown}]",
                          required=required, nargs=-1 if many else 1)


def _nouns(target: Target) -> str:
    """"ip leases", "datapath networks": the resource name as words in help texts."""
    return target.resource.name.replace("_", " ")


def _noun(target: Target) -> str:
    """"ip lease", "translation static address": one of _nouns."""
    nouns = _nouns(target)
    return nouns.removesuffix("es") if nouns.endswith("sses") else nouns.removesuffix("s")


def _a(noun: str) -> str:
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def _parent_args(target: Target) -> list[click.Argument]:
    return [_arg("parent", target.parent_field)] if target.parent_field else []


def _command(name: str, help_text: str, params: list[click.Parameter],
             run: Callable[[Session, dict[str, Any]], None]) -> click.Command:
    def callback(**values: Any) -> None:
        session = _session(values)
        run(session, values)
    return click.Command(name, params=[*params, JSON_OPTION], callback=callback, help=help_text)


def add(target: Target) -> click.Command:
    fields = target.fields(create=True)
    columns = options.columns(target.resource.all_fields())

    def run(session: Session, values: dict[str, Any]) -> None:
        body = options.given(fields, values)
        if not target.is_join:
            path = target.collection(values.get("parent"))
            emit_row(session.client.call("POST", path, **body), columns, session.as_json)
            return
        added: list[Row] = []
        try:
            for item in values["items"]:
                added.append(session.client.call(
                    "POST", target.item(values.get("parent"), item), **body))
        finally:
            # One join: its row, as any add; several: the rows added, even after a failure.
            if len(values["items"]) == 1 and added:
                emit_row(added[0], columns, session.as_json)
            elif added:
                emit_rows(added, columns, session.as_json)

    items = [_arg("items", target.item_field, many=True)] if target.is_join else []
    what = f"Add {_nouns(target)}; stops at the first failure." if target.is_join \
        else f"Create {_a(_noun(target))}."
    return _command("add", what, [*_parent_args(target), *items, *options.options(fields, True)],
                    run)


def show(target: Target) -> click.Command:
    filters = target.filters()
    extra = SHOW_EXTRAS.get(target.rows.name)
    columns = options.columns(target.rows.all_fields())
    item_columns = options.columns(target.resource.all_fields())

    def run(session: Session, values: dict[str, Any]) -> None:
        client, parent = session.client, values.get("parent")
        if values["item"]:
            rows = [client.call("GET", target.item(parent, values["item"]))]
        else:
            rows = client.list_all(target.collection(parent),
                                   **options.given(filters, values))
        if extra:
            rows = extra.enrich(client, rows)
        shown_columns = columns + (extra.columns if extra else ())
        table_rows = [{**row, **extra.display(row)} if extra else row for row in rows]
        if values["item"]:
            # One row is the target's own (a reverse join's item is the join row).
            emit_row(rows[0] if session.as_json else table_rows[0],
                     shown_columns if target.rows is target.resource else item_columns,
                     session.as_json)
        else:
            emit_rows(rows if session.as_json else table_rows, shown_columns,
                      session.as_json)

    return _command("show", f"Show one {_noun(target)}, or list them all (optionally filtered).",
                    [*_parent_args(target), _arg("item", target.item_field, required=False),
                     *options.options(filters)], run)


def delete(target: Target) -> click.Command:
    columns = options.columns(target.resource.all_fields())
    match = target.match_fields()

    def run(session: Session, values: dict[str, Any]) -> None:
        deleted: list[Row] = []
        body = options.given(match, values)
        try:
            if match and not values["items"]:
                # OpenVNet's `vnctl filters static del FIL --protocol ...`: the row the
                # options name.
                deleted.append(session.client.call(
                    "DELETE", target.collection(values.get("parent")), **body))
            for item in values["items"]:
                deleted.append(session.client.call(
                    "DELETE", target.item(values.get("parent"), item), **body))
        finally:
            # Rows deleted before a failure are gone: say so even when exiting with 1.
            emit_rows(deleted, columns, session.as_json)

    by_options = f", or the one the {', '.join(options.flag(f.name) for f in match)} " \
        "options name" if match else ""
    items = _arg("items", target.item_field, required=not match, many=True)
    return _command("del", f"Delete {_nouns(target)}{by_options}; stops at the first failure.",
                    [*_parent_args(target), items, *options.options(match)], run)


def modify(target: Target) -> click.Command:
    fields = target.fields(update=True)
    columns = options.columns(target.resource.all_fields())

    def run(session: Session, values: dict[str, Any]) -> None:
        body = options.given(fields, values)
        if not body:
            raise VnctlError("nothing to modify: give at least one of "
                             + ", ".join(options.flag(f.name) for f in fields))
        row = session.client.call("PUT", target.item(None, values["item"]), **body)
        emit_row(row, columns, session.as_json)

    return _command("modify", f"Update {_a(_noun(target))}.",
                    [_arg("item", target.item_field), *options.options(fields)], run)


def group(target: Target) -> click.Group:
    verbs = [add, show, delete] + ([modify] if target.resource.updatable and not target.parent
                                   else [])
    what = target.resource.description or _nouns(target).capitalize()
    result = click.Group(target.name, help=f"{what}.")
    for verb in verbs:
        result.add_command(verb(target))
    if not target.parent:
        for child in children_of(target.name):
            result.add_command(group(child))
    return result


def resource_groups() -> list[click.Group]:
    return [group(target) for target in top_level()]
