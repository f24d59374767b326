"""Strict reads of the API's scalar values, shared by vnmgr (writes) and webapi (filters).

Each function takes what a client sent (a form string or a JSON value) and returns the
value or raises ValueError; the caller turns that into an ApiError naming the field.
Python's own int() is too lenient for an API (`2_4`, ` 24 `, Arabic-Indic digits and
`0o17` all pass), so integers and dpids are matched against explicit ASCII patterns.
"""

from __future__ import annotations

import re
from typing import Any

# Plain decimal (no leading zeros: Ruby's Integer(), which OpenVNet used, reads "024"
# as octal, so it is refused rather than guessed) or 0x-hex; ASCII digits only.
_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)|0[xX][0-9a-fA-F]+", re.ASCII)

# sinatra-browse's Boolean type, which OpenVNet's endpoints use, takes exactly these
# (case-sensitive); JSON true/false are taken as themselves.
TRUE_WORDS = ("true", "t", "yes", "y", "1")
FALSE_WORDS = ("false", "f", "no", "n", "0")

DPID_MAX = 2**64 - 1
# A dpid is always hexadecimal, as OpenVNet's `transform: :hex` and every OVS tool print
# it: "0x0000aaaaaaaaaaab", "0000aaaaaaaaaaab" (ovs-ofctl show, ovs-vsctl get bridge …
# datapath_id), or eight colon-separated octets "00:00:00:00:00:00:00:07" (Ryu, Faucet).
_DPID_HEX = re.compile(r"(?:0[xX])?([0-9a-fA-F]{1,16})", re.ASCII)
_DPID_OCTETS = re.compile(r"[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){7}", re.ASCII)


def integer(value: Any) -> int:
    """A JSON integer (or integral float), or a string in plain decimal or 0x-hex;
    raises ValueError for anything else (booleans, fractions, inf, `2_4`, `0o17`)."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not value.is_integer():  # also refuses inf and nan
            raise ValueError(f"{value} is not an integer")
        return int(value)
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        return int(value, 16) if value[:2] in ("0x", "0X") else int(value, 10)
    raise ValueError(f"{value!r} is not an integer")


def boolean(value: Any) -> bool:
    """JSON true/false, or one of OpenVNet's words (TRUE_WORDS, FALSE_WORDS); raises
    ValueError otherwise (`on`, `off`, `TRUE`, ` true` included)."""
    if isinstance(value, bool):
        return value
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    raise ValueError(f"{value!r} is not a boolean")


def dpid(value: Any) -> int:
    """A datapath id: a JSON integer, or hex text in one of the forms above; raises
    ValueError when it is none of them or does not fit 64 bits."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and (match := _DPID_HEX.fullmatch(value)):
        number = int(match.group(1), 16)
    elif isinstance(value, str) and _DPID_OCTETS.fullmatch(value):
        number = int(value.replace(":", ""), 16)
    else:
        raise ValueError(f"{value!r} is not a datapath id")
    if not 0 <= number <= DPID_MAX:
        raise ValueError(f"{value!r} does not fit in 64 bits")
    if number == 0:
        # ovs-vswitchd.conf.db(5), other-config:datapath-id: "may not be all-zero"
        raise ValueError(f"{value!r} is all zero, which no datapath can have")
    return number


def format_dpid(number: int) -> str:
    """The one stored form: "0x" and 16 lowercase hex digits."""
    return f"0x{number:016x}"
