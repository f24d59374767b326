"""`vnmgr` (run the service), `vnmgr db init|upgrade` (create or upgrade the schema) and
`vnmgr keys init [--force]` (write the CURVE keys of `[messaging] keys_dir`)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from vnet import db
from vnet.keys import KeysError, init_keys, keys_dir, load_server
from vnet.runtime import common_arguments, on_sigterm, start_service

log = logging.getLogger("vnmgr")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vnmgr", description="wakame-vnet model manager")
    common_arguments(parser)
    sub = parser.add_subparsers(dest="command")
    db_parser = sub.add_parser("db", help="schema management")
    db_parser.add_argument("action", choices=("init", "upgrade", "revision"))
    keys_parser = sub.add_parser(
        "keys", help="CURVE keys: a server pair and one client pair per role (webapi, agent)")
    keys_parser.add_argument("action", choices=("init",))
    keys_parser.add_argument("--keys-dir", help="where to write them (default: [messaging] "
                             "keys_dir)")
    keys_parser.add_argument("--force", action="store_true",
                             help="replace existing keys (clients holding the old ones are "
                             "locked out)")
    args = parser.parse_args(argv)
    config = start_service("vnmgr", args)
    if args.command == "keys":
        return _keys_init(args.keys_dir or keys_dir(config), args.force)
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

    directory = keys_dir(config)
    try:
        keys = load_server(directory) if directory is not None else None
    except KeysError as exc:
        log.error("%s", exc)
        return 2
    db.upgrade(url)  # a fresh install works without a separate `db init`
    engine = db.make_engine(url)
    try:
        service = Vnmgr(db.make_sessionmaker(engine),
                        config.get("messaging", "rpc_endpoint"),
                        config.get("messaging", "pub_endpoint"),
                        config.get_float("vnmgr", "heartbeat_interval", 1.0),
                        node_expiry=config.get_float("vnmgr", "node_expiry", 300.0),
                        agent_timeout=config.get_float("vnmgr", "agent_timeout", 4.0),
                        events_keep=config.get_int("vnmgr", "events_keep", 10000),
                        keys=keys)
    except ValueError as exc:
        raise SystemExit(f"vnmgr: [vnmgr] {exc}") from None
    metrics = start_metrics_server(service, config.get("vnmgr", "metrics_host", "127.0.0.1"),
                                   config.get("vnmgr", "metrics_port", ""))

    def stop() -> None:
        service.running = False

    on_sigterm(stop)
    log.info("vnmgr serving rpc=%s pub=%s db=%s keys=%s",
             config.get("messaging", "rpc_endpoint"), config.get("messaging", "pub_endpoint"),
             _redact(url), directory or "off (messaging in the clear)")
    try:
        service.serve_forever()
    finally:
        service.close()
        if metrics is not None:
            metrics.shutdown()
        engine.dispose()
        log.info("vnmgr stopped")
    return 0


def _keys_init(directory: Path | str | None, force: bool) -> int:
    """`vnmgr keys init`: 0 when written, 2 when refused (keys exist, no CURVE, no dir)."""
    if not directory:
        log.error("no keys directory: set [messaging] keys_dir or pass --keys-dir")
        return 2
    try:
        written = init_keys(Path(directory), force)
    except KeysError as exc:
        log.error("%s", exc)
        return 2
    log.info("wrote %s", " ".join(str(path) for path in written))
    return 0


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':')[0]}:***@{host}" if ":" in creds else url
    return url
