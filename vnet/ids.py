"""Public resource ids: `<prefix>-<name>`, user-chosen or random, as OpenVNet does."""

from __future__ import annotations

import re
import secrets
import string

from vnet.registry import RESOURCES

PREFIXES = {name: resource.prefix for name, resource in RESOURCES.items()}

_NAME = re.compile(r"^[a-z0-9]{1,255}$")
_ALPHABET = string.ascii_lowercase + string.digits


def is_valid(resource: str, uuid: str) -> bool:
    prefix, sep, name = uuid.partition("-")
    return bool(sep) and prefix == PREFIXES[resource] and bool(_NAME.match(name))


def random_uuid(resource: str) -> str:
    return PREFIXES[resource] + "-" + "".join(secrets.choice(_ALPHABET) for _ in range(8))
