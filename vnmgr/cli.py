"""`vnmgr` (run the service) and `vnmgr db init|upgrade` (create or upgrade the schema)."""

from __future__ import annotations

import argparse
import logging

from vnet import db
from vnet.runtime import common_arguments, on_sigterm, start_service

log = logging.getLogger("vnmgr")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vnmgr", description="wakame-vnet model manager")
    common_arguments(parser)
    sub = parser.add_subparsers(dest="command")
    db_parser = sub.add_parser("db", help="schema management")
    db_parser.add_argument("action", choices=("init", "upgrade", "revision"))
    args = parser.parse_args(argv)
    config = start_service("vnmgr", args)
    url = config.database_url()
    if args.command == "db":
        if args.action == "revision":
            print(db.current_revision(url) or "none")
        else:
            db.upgrade(url)
            log.info("schema at revision %s (%s)", db.current_revision(url), _redact(url))
        return 0
    return serve(config, url)


def serve(config, url: str) -> int:  # type: ignore[no-untyped-def]
    from vnmgr.metrics import start_metrics_server
    from vnmgr.service import Vnmgr

    db.upgrade(url)  # a fresh install works without a separate `db init`
    engine = db.make_engine(url)
    try:
        service = Vnmgr(db.make_sessionmaker(engine),
                        config.get("messaging", "rpc_endpoint"),
                        config.get("messaging", "pub_endpoint"),
                        config.get_float("vnmgr", "heartbeat_interval", 1.0),
                        node_expiry=config.get_float("vnmgr", "node_expiry", 300.0),
                        agent_timeout=config.get_float("vnmgr", "agent_timeout", 4.0),
                        events_keep=config.get_int("vnmgr", "events_keep", 10000))
    except ValueError as exc:
        raise SystemExit(f"vnmgr: [vnmgr] {exc}") from None
    metrics = start_metrics_server(service, config.get("vnmgr", "metrics_host", "127.0.0.1"),
                                   config.get("vnmgr", "metrics_port", ""))

    def stop() -> None:
        service.running = False

    on_sigterm(stop)
    log.info("vnmgr serving rpc=%s pub=%s db=%s", config.get("messaging", "rpc_endpoint"),
             config.get("messaging", "pub_endpoint"), _redact(url))
    try:
        service.serve_forever()
    finally:
        service.close()
        if metrics is not None:
            metrics.shutdown()
        engine.dispose()
        log.info("vnmgr stopped")
    return 0


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':')[0]}:***@{host}" if ":" in creds else url
    return url
