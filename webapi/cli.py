"""`vnet-webapi`: serve the API under gunicorn (webapi.server) until SIGTERM."""

from __future__ import annotations

import logging
import sys

from vnet.keys import WEBAPI, KeysError, client_keys
from vnet.runtime import service_config
from webapi.auth import AuthConfigError
from webapi.server import SettingsError, WebApiServer, load_settings

log = logging.getLogger("webapi")


def main(argv: list[str] | None = None) -> int:
    """Exit status 2 (before binding anything) when a `[webapi]` setting or the tokens
    file is unusable; otherwise gunicorn's: 0 after a graceful SIGTERM."""
    config = service_config("vnet-webapi", "webapi", "wakame-vnet HTTP API", argv)
    try:
        # Checked here, in the master, so that missing keys stop the start (exit 1, the
        # file named) rather than every worker's boot (webapi.backend loads them again).
        client_keys(config, WEBAPI)
    except KeysError as exc:
        raise SystemExit(f"vnet-webapi: {exc}") from None
    try:
        settings = load_settings(config)
    except (SettingsError, AuthConfigError) as exc:
        log.error("refusing to start: %s", exc)
        return 2
    log.info("webapi starting on http://%s:%d (auth %s, %d worker(s) x %d threads)",
             settings.host, settings.port, "token" if settings.auth.enabled else "none",
             settings.workers, settings.threads)
    # gunicorn's arbiter ends the process with sys.exit (0 after a graceful stop, logging
    # "Shutting down"); its forked workers leave through this same frame, so no code
    # after run() or in a finally here could tell the master from a worker.
    WebApiServer(config, settings, logging.getLevelName(logging.getLogger().level)).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
