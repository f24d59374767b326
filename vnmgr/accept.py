"""What a write accepts, derived from the resource registry: the one check that refuses
a parameter instead of dropping it.

A parameter the write would ignore — a typo, another version's name, a field PUT
cannot change, a feature not implemented here — is a 422 naming it, so a client never
gets a 2xx for a request that did less than it asked. OpenVNet's names for our fields
(`Resource.aliases`) are read as those fields.
"""

from __future__ import annotations

from typing import Any

from vnet.errors import ApiError, invalid
from vnet.registry import RESOURCES, Resource, accepted

# The writes of the HTTP API (POST, PUT, DELETE).
API_OPS = ("create", "update", "delete")
# Columns nobody writes: the server keeps them.
READ_ONLY = ("id", "created_at", "updated_at")


def request_params(op: str, resource: str,
                   raw: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """(the parameters under our field names, {our name: the alias the client sent});
    an agent's op (not in API_OPS) is passed through whole.

    raises ApiError(400, None) when raw is not an object; ApiError(422, name) for a
    parameter `op` does not accept (unknown, read-only, unchangeable by PUT, or an
    OpenVNet feature not implemented here), for an alias given together with the field
    it names, and on update for an empty value of a field that cannot be null.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ApiError(400, "parameters must be an object")
    if op not in API_OPS:
        # An agent's op (a binding report): not an API write, its handler reads it whole.
        return dict(raw), {}
    res = RESOURCES[resource]
    allowed = accepted(op, resource)
    params: dict[str, Any] = {}
    sent_as: dict[str, str] = {}
    aliases = dict(res.aliases)
    given_as: dict[str, str] = {}  # our name -> the name the client used for it
    for name, value in raw.items():
        ours = aliases.get(name, name)
        if ours not in allowed:
            raise _refusal(op, res, name, ours)
        if op != "update" and (value is None or value == ""):
            # On POST/DELETE empty means "not given", under either name.
            params.setdefault(ours, value)
            continue
        if ours in given_as:
            raise invalid(name, f"{given_as[ours]} and {name} are the same field: give one "
                                "of them")
        given_as[ours] = name
        if ours != name:
            sent_as[ours] = name
        if op == "update" and (value is None or value == ""):
            _check_clearable(res, name, ours)
        params[ours] = value
    return params, sent_as


def renamed(error: ApiError, sent_as: dict[str, str]) -> ApiError:
    """error blaming the name the client sent (an alias) rather than ours."""
    if error.field in sent_as:
        error.field = sent_as[error.field]
    return error


def _refusal(op: str, res: Resource, name: str, ours: str) -> ApiError:
    """The 422 for `name` (our field `ours`), saying why this op does not take it."""
    if name in res.unsupported:
        return invalid(name, f"{name} is an OpenVNet parameter of a feature wakame-vnet does "
                             "not implement")
    field = res.field(ours)
    if field is not None and (ours in READ_ONLY or ours == "uuid"):
        return invalid(name, f"{name} is read-only")
    if field is not None and op == "update":
        return invalid(name, f"{name} cannot be changed by PUT")
    if field is not None and op == "create":
        return invalid(name, f"{name} is set by the server")
    expected = ", ".join(sorted(accepted(op, res.name))) or "no parameters"
    verb = {"create": "POST", "update": "PUT", "delete": "DELETE"}.get(op, op)
    return invalid(name, f"unknown parameter {name}: {verb} {res.name} takes {expected}")


def _check_clearable(res: Resource, name: str, ours: str) -> None:
    field = res.field(ours)
    if field is not None and not field.nullable:
        raise invalid(name, f"{name} cannot be empty: it has no null value")
