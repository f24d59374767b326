"""Click parameters derived from the registry's fields (vnet.registry): `--ipv4-network`
is the API's `ipv4_network`, so the CLI and the HTTP API cannot disagree on names."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import click

from vnet.registry import Field

INTERNAL = ("id", "created_at", "updated_at")  # not worth a column in a table


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def field_option(field: Field, required_note: bool = False) -> click.Option:
    help_text = field.description + (" [required by the API]" if required_note else "")
    if field.kind == "boolean":
        # Tri-state: an omitted flag must not send false (modify would reset the field).
        return click.Option([f"{flag(field.name)}/--no-{flag(field.name)[2:]}", field.name],
                            default=None, help=help_text or None)
    kind: Any = click.INT if field.kind == "integer" else click.STRING
    if field.enum:
        kind = click.Choice(field.enum)
    return click.Option([flag(field.name), field.name], type=kind, help=help_text or None,
                        multiple=True, callback=_once)


def _once(_ctx: click.Context, param: click.Parameter, values: tuple[Any, ...]) -> Any:
    """Click keeps the last of a repeated option; the API takes one value per name, so a
    repeated option (`--rules A --rules B`) is a usage error, not a dropped value."""
    if len(values) > 1:
        hint = " (several security group rules go in one value, one per line)" \
            if param.name == "rules" else ""
        raise click.BadParameter(f"given {len(values)} times: give it once{hint}", param=param)
    return values[0] if values else None


def options(fields: Iterable[Field], note_required: bool = False) -> list[click.Option]:
    return [field_option(f, note_required and f.required) for f in fields]


def given(fields: Iterable[Field], values: dict[str, Any]) -> dict[str, Any]:
    """The parameters the user actually passed: absent ones are left to the API's defaults."""
    return {f.name: values[f.name] for f in fields if values.get(f.name) is not None}


def columns(fields: Iterable[Field]) -> tuple[str, ...]:
    return tuple(f.name for f in fields
                 if f.name not in INTERNAL and f.kind != "object" and f.shown)
