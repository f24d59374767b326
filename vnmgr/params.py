"""Typed reads of request parameters, which arrive as JSON values or form strings.

Every failure names the offending field, so the HTTP client learns exactly what to fix.
Parameters are read-only: a handler that derives a value (a prefix from "a.b.c.d/nn", a
default from another row) checks it with as_integer/as_ipv4 under the field's name
instead of writing it back into the request.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from vnet import ids, parse
from vnet.addr import AddressError, parse_ipv4, parse_mac
from vnet.errors import ApiError, invalid
from vnet.registry import TEXT_MAX_LEN, UUID_MAX_LEN


def as_integer(name: str, value: Any, low: int = 0, high: int = 2**63 - 1) -> int:
    """`value` (a string in plain decimal or 0x-hex, or a JSON number) as an integer in
    [low, high]; raises ApiError(422, name) otherwise (see vnet.parse.integer)."""
    try:
        # JSON true is not 1, 24.9 is not a prefix length, "2_4" is a typo.
        number = parse.integer(value)
    except ValueError:
        raise invalid(name, f"{name} must be an integer (decimal or 0x-hex)") from None
    if not low <= number <= high:
        raise invalid(name, f"{name} must be between {low} and {high}")
    return number


def as_ipv4(name: str, text: str) -> int:
    """Dotted-quad `text` as an integer; raises ApiError(422, name) if it is not one."""
    try:
        return parse_ipv4(text)
    except AddressError as exc:
        raise invalid(name, str(exc)) from None


def _empty(value: Any) -> bool:
    return value is None or value == ""


class Params:
    """One request's parameters. A null or "" value reads as "not given" (has() is
    False, typed reads return None); clears() tells that it was sent empty, which an
    update applies as "clear this nullable field" (create ignores it)."""

    def __init__(self, raw: dict[str, Any] | None) -> None:
        if raw is not None and not isinstance(raw, dict):
            raise ApiError(400, "parameters must be an object")
        self.raw: Mapping[str, Any] = MappingProxyType(
            {k: v for k, v in (raw or {}).items() if not _empty(v)})
        self.cleared = frozenset(k for k, v in (raw or {}).items() if _empty(v))

    def has(self, name: str) -> bool:
        return name in self.raw

    def clears(self, name: str) -> bool:
        """True when `name` was sent as null or "" (on PUT: set the field to null)."""
        return name in self.cleared

    def _value(self, name: str, required: bool) -> Any:
        if name not in self.raw:
            if required:
                raise invalid(name, f"{name} is required")
            return None
        return self.raw[name]

    def text(self, name: str, required: bool = False,
             max_len: int = TEXT_MAX_LEN) -> str | None:
        value = self._value(name, required)
        if value is None:
            return None
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise invalid(name, f"{name} must be a string")
        value = str(value)
        if len(value) > max_len:
            raise invalid(name, f"{name} is longer than {max_len} characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate from JSON "\ud800": not storable
            raise invalid(name, f"{name} is not valid Unicode text") from None
        return value

    def integer(self, name: str, required: bool = False, low: int = 0,
                high: int = 2**63 - 1) -> int | None:
        value = self._value(name, required)
        return None if value is None else as_integer(name, value, low, high)

    def boolean(self, name: str, default: bool | None = None) -> bool | None:
        value = self._value(name, False)
        if value is None:
            return default
        try:
            return parse.boolean(value)
        except ValueError:
            raise invalid(name, f"{name} must be true or false") from None

    def choice(self, name: str, choices: tuple[str, ...], default: str | None = None) -> str:
        value = self.text(name) or default
        if value not in choices:
            raise invalid(name, f"{name} must be one of {', '.join(choices)}")
        return value

    def dpid(self, name: str, required: bool = False) -> int | None:
        """A datapath id in any form vnet.parse.dpid takes; raises ApiError(422, name)."""
        value = self._value(name, required)
        if value is None:
            return None
        try:
            return parse.dpid(value)
        except ValueError as exc:
            raise invalid(name, f"{exc}: write it as 0x0000aaaaaaaaaaab, 0000aaaaaaaaaaab "
                                "or 00:00:aa:aa:aa:aa:aa:ab") from None

    def mac(self, name: str, required: bool = False) -> int | None:
        value = self.text(name, required)
        if value is None:
            return None
        try:
            return parse_mac(value)
        except AddressError as exc:
            raise invalid(name, str(exc)) from None

    def ipv4(self, name: str, required: bool = False) -> int | None:
        value = self.text(name, required)
        return None if value is None else as_ipv4(name, value)

    def new_uuid(self, resource: str, name: str = "uuid") -> str:
        value = self.text(name, max_len=UUID_MAX_LEN)
        if value is None:
            return ids.random_uuid(resource)
        if not ids.is_valid(resource, value):
            raise invalid(name, f"{name} must look like {ids.PREFIXES[resource]}-<lowercase "
                                "letters and digits, 1-255 characters>")
        return value
