"""`vnet-webapi`: serve the API with a threaded WSGI server until SIGTERM."""

from __future__ import annotations

import logging
import threading

from werkzeug.serving import make_server

from vnet.keys import KeysError
from vnet.runtime import on_sigterm, service_config
from webapi.app import create_app

log = logging.getLogger("webapi")


def main(argv: list[str] | None = None) -> int:
    config = service_config("vnet-webapi", "webapi", "wakame-vnet HTTP API", argv)
    try:
        app = create_app(config)
    except KeysError as exc:
        raise SystemExit(f"vnet-webapi: {exc}") from None
    host = config.get("webapi", "host", "127.0.0.1")
    port = config.get_int("webapi", "port", 9090)
    server = make_server(host, port, app, threaded=True)

    def stop() -> None:
        # shutdown() waits for serve_forever() to return, which runs in this (the signal
        # handler's) thread: calling it here directly would deadlock.
        threading.Thread(target=server.shutdown, daemon=True).start()

    on_sigterm(stop)
    log.info("webapi serving http://%s:%d", host, server.port)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        app.extensions["vnet"].engine.dispose()
        log.info("webapi stopped")
    return 0
