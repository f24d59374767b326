"""Sends this datapath's port claims (vna.claims) to vnmgr, off the agent's worker thread.

Only the latest set matters, so offers are coalesced; a set vnmgr did not take (it is
down, or the write failed) is retried every `retry` seconds until it does.  After a
snapshot the agent asks for a resend: vnmgr's model may have been replaced, and a report
that changes nothing costs vnmgr no event.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping

from vna.claims import Claim
from vnet.errors import ApiError
from vnet.messaging import RpcClient

log = logging.getLogger("vna.claims")

Report = tuple[str, Mapping[str, Claim]]


def _agrees(claims: Mapping[str, Claim], recorded: Mapping[str, Mapping[str, object]]) -> bool:
    """The model holds exactly these claims (ports; vnmgr owns the states and reasons)."""
    return claims.keys() == recorded.keys() and all(
        (c.port_name, c.ofport) == (recorded[u].get("port_name"), recorded[u].get("port_number"))
        for u, c in claims.items())


class ClaimReporter:
    def __init__(self, rpc: RpcClient | None, retry: float = 1.0) -> None:
        self.rpc = rpc
        self.retry = retry
        self.reports_sent = 0
        self.failures = 0
        self._cond = threading.Condition()
        self._pending: Report | None = None
        self._sent: Report | None = None
        self._stopped = False
        self._warned: set[tuple[str, str]] = set()  # (interface, state) logged once
        self._thread = threading.Thread(target=self._run, name="claims", daemon=True)
        if rpc is not None:
            self._thread.start()

    def offer(self, datapath_uuid: str, claims: Mapping[str, Claim],
              recorded: Mapping[str, Mapping[str, object]] | None = None) -> None:
        """The current claims of datapath `datapath_uuid`; sent if they differ from the
        last set vnmgr took, or from what the model records for the datapath
        (`recorded`: active_interfaces rows by interface) - vnmgr may have dropped them,
        e.g. when the datapath was deleted and created again."""
        report = (datapath_uuid, dict(claims))
        with self._cond:
            if report == self._pending:
                return
            if report == self._sent and (recorded is None or _agrees(claims, recorded)):
                return
            self._pending = report
            self._cond.notify()

    def resend(self) -> None:
        with self._cond:
            if self._pending is None and self._sent is not None:
                self._pending = self._sent
            self._sent = None
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                report = self._pending
            if self._send(report):
                with self._cond:
                    self._sent = report
                    if self._pending == report:
                        self._pending = None
            else:
                with self._cond:
                    self._cond.wait(self.retry)

    def _send(self, report: Report) -> bool:
        datapath_uuid, claims = report
        ports = [claim.report(uuid) for uuid, claim in sorted(claims.items())]
        try:
            result = self.rpc.call("report", "active_interfaces",
                                   params={"datapath_uuid": datapath_uuid, "ports": ports},
                                   timeout_ms=3000)
        except ApiError as exc:
            self.failures += 1
            log.warning("could not report %d port claims of %s: %s", len(ports),
                        datapath_uuid, exc.message)
            return False
        self.reports_sent += 1
        states = result.get("bindings", {})
        log.info("reported %d port claims of %s", len(ports), datapath_uuid)
        for uuid, state in sorted(states.items()):
            if state != "active" and (uuid, state) not in self._warned:
                self._warned.add((uuid, state))
                log.warning("port %s of interface %s is %s here (see the interface's "
                            "binding)", claims[uuid].port_name, uuid, state)
        return True
