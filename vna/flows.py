"""The Flow value type: one OpenFlow 1.3 flow entry as plain, hashable data.

A Flow carries everything needed to install it, and its cookie is derived from its
content (see `cookie_of`), so two flows with the same cookie in the same table are the
same flow.  The runtime syncer relies on this to diff desired vs installed flows by
cookie alone.

Cookie layout (64 bits)::

    63      56 55                     32 31                            0
    +---------+-------------------------+-------------------------------+
    |  kind   |  obj_id (24-bit db id)  |  crc32(canonical content)     |
    +---------+-------------------------+-------------------------------+

kind is a nonzero namespace owned by one feature (`Feature.kinds`: which feature and which owner
resource type), obj_id the database id of the model row the flow is derived from
(0 for datapath-wide flows).  Deleting every flow of one object is therefore a
cookie/mask delete on the top 32 bits, and deleting one exact flow a full-mask delete.
"""

from __future__ import annotations

import ipaddress
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vna.actions import Action

Match = tuple[tuple[str, Any], ...]

KIND_SHIFT = 56
OBJ_SHIFT = 32
OBJ_MASK = 0xFFFFFF
OWNER_MASK = 0xFFFFFFFF_00000000  # kind + obj_id: every flow of one object


def make_match(fields: Mapping[str, Any] | None = None, **kw: Any) -> Match:
    """Sorted (name, value) pairs, so equal matches compare and hash equal."""
    merged = dict(fields or {}, **kw)
    return tuple(sorted(merged.items()))


def ipv4_prefix_value(network: str, prefix: int) -> str | tuple[str, str] | None:
    """OFPMatch value for an IPv4 prefix; None for /0 (no constraint at all)."""
    if prefix <= 0:
        return None
    if prefix >= 32:
        return network
    net = ipaddress.IPv4Network(f"{network}/{prefix}", strict=False)
    return (str(net.network_address), str(net.netmask))


@dataclass(frozen=True, slots=True)
class Flow:
    table: int
    priority: int
    match: Match
    actions: tuple[Action, ...] = ()
    goto: int | None = None
    metadata: tuple[int, int] | None = None
    kind: int = 0
    obj_id: int = 0
    # Derived; excluded from equality because it is a pure function of the rest.
    _cookie: int = field(default=0, init=False, repr=False, compare=False)
    # Its OFPFC_ADD flow_mod bytes (xid 0), set once by vna.ofwire.flow_mod_cached.
    _wire: bytes | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0 < self.kind < 256:
            raise ValueError(f"flow kind must be 1..255, got {self.kind}")
        if not 0 <= self.obj_id <= OBJ_MASK:
            raise ValueError(f"obj_id {self.obj_id} does not fit 24 bits")
        if list(self.match) != sorted(self.match):
            object.__setattr__(self, "match", tuple(sorted(self.match)))
        object.__setattr__(self, "_cookie", cookie_of(self))

    @property
    def cookie(self) -> int:
        return self._cookie

    @property
    def is_drop(self) -> bool:
        return not self.actions and self.goto is None

    def match_dict(self) -> dict[str, Any]:
        return dict(self.match)


def canonical(flow: Flow) -> bytes:
    # repr of ints, strs and tuples is stable across CPython versions, which is all a
    # crc over "the content" needs; kind/obj_id are outside the crc as they have own bits.
    body = (flow.table, flow.priority, flow.match, flow.actions, flow.goto, flow.metadata)
    return repr(body).encode()


def cookie_of(flow: Flow) -> int:
    return (
        (flow.kind << KIND_SHIFT)
        | ((flow.obj_id & OBJ_MASK) << OBJ_SHIFT)
        | zlib.crc32(canonical(flow))
    )


def cookie_parts(cookie: int) -> tuple[int, int, int]:
    """(kind, obj_id, crc) of a cookie, for logs and dump-flows tooling."""
    return cookie >> KIND_SHIFT, (cookie >> OBJ_SHIFT) & OBJ_MASK, cookie & 0xFFFFFFFF


def by_cookie(flows: Iterable[Flow]) -> dict[int, Flow]:
    return {f.cookie: f for f in flows}
