"""What this datapath cannot reach, for its status report: never a silent loss.

A remote vif answers ARP and is routed to on every datapath; if the transport has no way
to its datapath (tunnel: no underlay address or tunnel port; mac2mac: neither both
datapath_networks nor a shared datapath_route_link, or no underlay port) its packets
would vanish without a trace.  The agent reports each such (interface, network) in
`status()["unreachable"]` (shown by GET /datapaths/<uuid>/status and `vnctl datapaths
show`) and logs a warning once per interface while it stays unreachable.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from vna.features.transport import Unreachable, unreachable
from vna.view import View

log = logging.getLogger("vna.reachability")

# A status report carries at most this many entries (and the total count).
MAX_REPORTED = 100


class Reachability:
    """Computes the report once per View (the status thread asks every few seconds)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._view: View | None = None
        self._found: list[Unreachable] = []
        self._warned: dict[str, tuple[tuple[str, str], ...]] = {}  # iface -> reasons

    def report(self, view: View | None) -> dict[str, Any]:
        """{"unreachable": [{interface_uuid, network_uuid, datapath_uuid, reason}, ...],
        "unreachable_total": n}."""
        with self._lock:
            if view is not self._view:
                self._view = view
                self._found = unreachable(view) if view is not None else []
                self._log(self._found)
            found = self._found
        return {"unreachable": [vars(u) for u in found[:MAX_REPORTED]],
                "unreachable_total": len(found)}

    def _log(self, found: list[Unreachable]) -> None:
        reasons: dict[str, list[tuple[str, str]]] = {}
        for u in found:
            reasons.setdefault(u.interface_uuid, []).append((u.network_uuid, u.reason))
        now = {iface: tuple(r) for iface, r in reasons.items()}
        for iface, why in now.items():
            if self._warned.get(iface) != why:
                log.warning("interface %s is unreachable from this datapath: %s", iface,
                            "; ".join(f"{net}: {reason}" for net, reason in why))
        for iface in self._warned.keys() - now.keys():
            log.info("interface %s is reachable again (or gone)", iface)
        self._warned = now
