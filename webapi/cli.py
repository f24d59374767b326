"""`vnet-webapi`: serve the API with a threaded WSGI server until SIGTERM."""

from __future__ import annotations

import argparse
import logging
import threading

from werkzeug.serving import make_server

from vnet.runtime import common_arguments, on_sigterm, start_service
from webapi.app import create_app

log = logging.getLogger("webapi")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vnet-webapi", description="wakame-vnet HTTP API")
    common_arguments(parser)
    args = parser.parse_args(argv)
    config = start_service("webapi", args)
    app = create_app(config)
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
