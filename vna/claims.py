"""Which model interfaces the ports of this bridge are: the agent's side of port binding.

A port is an interface's when its `external_ids:iface-id` is the interface's uuid (as OVN
and OpenVNet tag VM ports), or when its name is the interface's `port_name` and the
interface is owned by this datapath or by none; a port is at most one interface.  Vifs
are **claimed**: reported to vnmgr, which decides where each vif is bound
(vnmgr.handlers.bindings) and publishes it, and the agent delivers to a vif only once the
model says it is bound here.  Other interfaces
(host ports) are bound by their owner alone, as before.

Two ports for one interface on one bridge: the port that already had it keeps it until it
goes away, otherwise the lowest ofport wins; the other is ignored, named in the claim's
detail and logged once.  Never are two ports classified for one interface.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from vna.ovsdb import OvsPort
from vna.view import View

log = logging.getLogger("vna.claims")


@dataclass(frozen=True)
class Claim:
    port_name: str
    ofport: int
    detail: str | None = None

    def report(self, interface_uuid: str) -> dict[str, object]:
        """The entry of vnmgr's `report` op for this claim."""
        return {"interface_uuid": interface_uuid, "port_name": self.port_name,
                "port_number": self.ofport, "detail": self.detail}


# The bridge's own port (OFPP_LOCAL) is never an interface's.
OFPP_LOCAL = 0xFFFE
# Ports of these OVSDB types carry the underlay or join bridges: never a VM's.
INFRASTRUCTURE_TYPES = frozenset({"vxlan", "geneve", "gre", "stt", "lisp", "patch"})


def _interface_of(view: View, datapath_uuid: str, port: OvsPort) -> str | None:
    """The one interface a port is: its iface-id; else the interface with its name owned
    here (a host interface before a vif), else an unowned one (the lowest id: port names
    are only unique per datapath).  Infrastructure ports may only be host interfaces."""
    infrastructure = port.ofport == OFPP_LOCAL or port.type in INFRASTRUCTURE_TYPES
    if port.iface_id and view.interface(port.iface_id) is not None:
        candidates = [view.interface(port.iface_id)]
    else:
        named = view.interfaces_named(port.name)
        candidates = [i for i in named if i.get("owner_datapath_uuid") == datapath_uuid]
        candidates = candidates or [i for i in named if i.get("owner_datapath_uuid") is None]
    if infrastructure:
        candidates = [i for i in candidates if i.get("mode") != "vif"]
    if not candidates:
        return None
    return min(candidates, key=lambda i: (i.get("mode") == "vif", i["id"]))["uuid"]


def _candidates(view: View, datapath_uuid: str, ports: Mapping[str, OvsPort]
                ) -> tuple[dict[str, list[OvsPort]], list[OvsPort]]:
    """(interface uuid -> every port of this bridge that is it, plain ports that are no
    interface).  Tunnel and internal ports (a non-empty OVSDB type) are never VMs."""
    out: dict[str, list[OvsPort]] = {}
    strangers = []
    for port in ports.values():
        uuid = _interface_of(view, datapath_uuid, port)
        if uuid is not None:
            out.setdefault(uuid, []).append(port)
        elif not port.type:
            strangers.append(port)
    return out, strangers


class PortClaims:
    """Keeps the choice stable between calls (the port that has an interface keeps it)
    and logs each ignored duplicate port once."""

    def __init__(self) -> None:
        self.current: dict[str, Claim] = {}
        self._warned: set[tuple[str, str]] = set()

    def update(self, view: View, datapath_uuid: str, ports: Mapping[str, OvsPort]
               ) -> tuple[dict[str, Claim], dict[str, int]]:
        """(vif claims to report, ofports of the other interfaces owned here)."""
        claims: dict[str, Claim] = {}
        owned: dict[str, int] = {}
        candidates, strangers = _candidates(view, datapath_uuid, ports)
        for port in strangers:
            self._warn_once(("", port.name), "port %s (iface-id %s) is no interface of the "
                            "model: not bound", port.name, port.iface_id)
        for uuid, found in sorted(candidates.items()):
            row = view.interface(uuid)
            mode = row.get("mode") if row else None
            if mode != "vif":
                if row is not None and row.get("owner_datapath_uuid") == datapath_uuid:
                    owned[uuid] = min(found, key=lambda p: p.ofport).ofport
                continue
            previous = self.current.get(uuid)
            keep = [p for p in found if previous and p.name == previous.port_name]
            chosen = keep[0] if keep else min(found, key=lambda p: p.ofport)
            ignored = sorted(p.name for p in found if p is not chosen)
            for name in ignored:
                self._warn_once((uuid, name), "port %s is also interface %s, which port %s "
                                "has: ignored", name, uuid, chosen.name)
            detail = f"also on port {', '.join(ignored)} (ignored)" if ignored else None
            claims[uuid] = Claim(chosen.name, chosen.ofport, detail)
        self.current = claims
        return claims, owned

    def _warn_once(self, key: tuple[str, str], message: str, *args: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, *args)
