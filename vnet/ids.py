"""Public resource ids: `<prefix>-<name>`, user-chosen or random, as OpenVNet does."""

from __future__ import annotations

import re
import secrets
import string

from vnet.registry import RESOURCES

PREFIXES = {name: resource.prefix for name, resource in RESOURCES.items()}

_NAME = "[a-z0-9]{1,255}"
_NAME_RE = re.compile(_NAME)
_ALPHABET = string.ascii_lowercase + string.digits


def pattern(prefix: str) -> str:
    """The uuids of a resource as a JSON-schema (ECMA) regular expression."""
    return f"^{prefix}-{_NAME}$"


def is_valid(resource: str, uuid: str) -> bool:
    prefix, sep, name = uuid.partition("-")
    # fullmatch: `$` would let "nw-a\n" through.
    return bool(sep) and prefix == PREFIXES[resource] and bool(_NAME_RE.fullmatch(name))


def random_uuid(resource: str) -> str:
    return PREFIXES[resource] + "-" + "".join(secrets.choice(_ALPHABET) for _ in range(8))
