"""Who may do what to vnmgr when keys are on (docs/messaging.md, "Keys and roles").

pyzmq's ZAP authenticator admits only the client public keys of `[messaging] keys_dir`
and names each connection by its key's role (ZAP User-Id), which vnmgr reads from every
request frame. The webapi role may do everything; an agent reads its slice and reports
what it sees, but never writes the model.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import zmq
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils import z85

from vnet.errors import ApiError
from vnet.keys import AGENT, WEBAPI, ZAP_DOMAIN, ServerKeys

log = logging.getLogger("vnmgr.auth")

# An agent's own reads and reports: its slice, its bridge's ports, its status.
AGENT_OPS = frozenset({"snapshot", "watch", "agent_status", "health"})
AGENT_REPORTS = frozenset({"active_interfaces"})
# A refused client reconnects every 100 ms (ZeroMQ's reconnect interval): its key is
# logged once a minute, not ten times a second.
UNKNOWN_KEY_LOG_INTERVAL_S = 60.0


def refusal(role: str | None, request: dict[str, Any]) -> ApiError | None:
    """The 403 for a request `role` may not make, or None when it may. `role` None means
    keys are off: everyone may do everything, as before keys existed."""
    if role is None or role == WEBAPI:
        return None
    op, resource = request.get("op"), request.get("resource")
    if role == AGENT:
        # Its switch's connection is no exception: vnmgr sets is_connected from the
        # agent's status reports (vnmgr.liveness).
        if op in AGENT_OPS or (op == "report" and resource in AGENT_REPORTS):
            return None
    return ApiError(403, f"role {role} may not {op} {resource or ''}".rstrip()
                    + " (an agent key reads its slice and reports; writes need the webapi key)",
                    "op")


class RoleAuthenticator(ThreadAuthenticator):
    """ZAP for vnmgr's sockets: a known client key passes, with its role as User-Id;
    any other key (or none: a client without CURVE fails the handshake itself) gets no
    connection, hence no answer and no event."""

    def __init__(self, context: zmq.Context, keys: ServerKeys) -> None:
        super().__init__(context, log=log)
        self.roles = keys.roles
        self._logged: dict[str, float] = {}  # unknown key -> when last logged

    def start(self) -> None:
        super().start()
        self.configure_curve_callback(ZAP_DOMAIN, credentials_provider=self)

    def callback(self, _domain: str, key: bytes) -> bool:
        """pyzmq's credentials-provider hook: `key` is the client's Z85 public key."""
        text = key.decode("ascii")
        if text in self.roles:
            return True
        now = time.monotonic()
        if now - self._logged.get(text, -UNKNOWN_KEY_LOG_INTERVAL_S) >= UNKNOWN_KEY_LOG_INTERVAL_S:
            if len(self._logged) > 1000:  # many strangers: keep the memory bounded
                self._logged.clear()
            self._logged[text] = now
            log.warning("refused a CURVE client with an unknown key %s", text)
        return False

    def curve_user_id(self, client_public_key: bytes) -> str:
        """The role of an admitted key (only called for keys `callback` admitted)."""
        return self.roles[z85.encode(client_public_key).decode("ascii")]
