"""The webapi under gunicorn: settings from `[webapi]`, checked before anything binds.

One gunicorn master (the `vnet-webapi` process itself) forks `[webapi] workers` worker
processes, each running `[webapi] threads` request threads (gunicorn's gthread worker).
The application is built in each worker after the fork (no preload), so every worker has
its own SQLAlchemy engine, ZeroMQ context (pyzmq's `Context.instance()` is per process)
and request metrics; nothing with a socket or thread crosses a fork.

SIGTERM is gunicorn's graceful stop: the workers stop accepting, finish the requests in
flight (up to `[webapi] graceful_timeout` seconds), and the master exits 0.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from vnet import parse
from vnet.config import Config
from vnet.runtime import OneLineFormatter
from webapi.app import create_app
from webapi.auth import Auth, load_auth

log = logging.getLogger("webapi")


# The largest model write is a few kilobytes (a security group's rules, a long
# display_name): 1 MiB leaves room, and a client cannot make a worker read 30 MB.
MAX_BODY_BYTES = 1 << 20


class SettingsError(ValueError):
    """A `[webapi]` setting webapi refuses to start with; the message names it."""


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    workers: int
    threads: int
    graceful_timeout: int  # seconds
    keepalive: int  # seconds an idle HTTP/1.1 connection stays open
    forwarded_allow_ips: str  # gunicorn's: who may set X-Forwarded-* ("*" for anyone)
    max_body_bytes: int  # a longer request body is answered 413 (and dropped, webapi.errors)
    auth: Auth


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback addresses; any other name counts as remote."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _positive(config: Config, key: str, default: int, most: int | None = None) -> int:
    raw = config.get("webapi", key, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"[webapi] {key} = {raw!r}: not an integer") from None
    if value < 1:
        raise SettingsError(f"[webapi] {key} = {value}: must be at least 1")
    if most is not None and value > most:
        raise SettingsError(f"[webapi] {key} = {value}: must be at most {most}")
    return value


def load_settings(config: Config) -> Settings:
    """Every serving setting of `[webapi]`, or SettingsError (AuthConfigError for auth and
    the tokens file) naming what is wrong. Refuses `auth = none` on a non-loopback host
    unless `allow_insecure = true`: anyone who can reach it could rewrite the network."""
    host = config.get("webapi", "host", "127.0.0.1")
    auth = load_auth(config)
    raw_insecure = config.get("webapi", "allow_insecure", "false")
    try:
        allow_insecure = parse.boolean(raw_insecure)
    except ValueError:
        raise SettingsError(f"[webapi] allow_insecure = {raw_insecure!r}: not a boolean"
                            ) from None
    if not auth.enabled and not is_loopback(host) and not allow_insecure:
        raise SettingsError(
            f"[webapi] host = {host} is not a loopback address and [webapi] auth = none: "
            "anyone who reaches it may change the network. Set auth = token (and "
            "tokens_file), or allow_insecure = true if something else guards it")
    return Settings(
        host=host,
        port=_positive(config, "port", 9090, most=65535),
        workers=_positive(config, "workers", 1),
        threads=_positive(config, "threads", 8),
        graceful_timeout=_positive(config, "graceful_timeout", 30),
        keepalive=_positive(config, "keepalive", 75),
        max_body_bytes=_positive(config, "max_body_bytes", MAX_BODY_BYTES),
        forwarded_allow_ips=config.get("webapi", "forwarded_allow_ips", "127.0.0.1,::1"),
        auth=auth,
    )


def _log_config(level: str) -> dict[str, Any]:
    """gunicorn's own messages in the services' one-line format, on stderr."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"line": {"()": OneLineFormatter, "service": "webapi"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "line",
                                "stream": "ext://sys.stderr"}},
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": level.upper(), "handlers": [], "propagate": True},
            # No access log: request counts are in /metrics, and a log line per request
            # is one more place for headers to leak.
            "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
        },
    }


class WebApiServer(BaseApplication):
    """gunicorn, configured from Settings instead of its command line or a file."""

    def __init__(self, config: Config, settings: Settings, log_level: str) -> None:
        self.config = config
        self.settings = settings
        self.log_level = log_level
        super().__init__(prog="vnet-webapi")

    def load_config(self) -> None:
        s = self.settings
        host = f"[{s.host}]" if ":" in s.host else s.host
        options: dict[str, Any] = {
            "bind": [f"{host}:{s.port}"],
            "workers": s.workers,
            "worker_class": "gthread",
            "threads": s.threads,
            "graceful_timeout": s.graceful_timeout,
            "keepalive": s.keepalive,
            "forwarded_allow_ips": s.forwarded_allow_ips,
            "preload_app": False,  # build the app (DB engine, ZeroMQ) in each worker
            # gunicorn's default control socket is one path per user: two webapis (or a
            # test run beside a service) would fight over it. Nothing here uses it.
            "control_socket_disable": True,
            "logconfig_dict": _log_config(self.log_level),
            "proc_name": "vnet-webapi",
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        # Runs in each worker, after the fork.
        app = create_app(self.config, auth=self.settings.auth)
        app.config["MAX_CONTENT_LENGTH"] = self.settings.max_body_bytes
        return app
