"""What the views need from outside the process: the database (reads) and vnmgr (writes)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from vnet.config import Config
from vnet.db import make_engine, make_sessionmaker
from vnet.errors import ApiError
from vnet.keys import WEBAPI, ClientKeys, client_keys
from vnet.messaging import RpcClient
from webapi.metrics import RequestMetrics


@dataclass
class Backend:
    engine: Engine
    sessions: sessionmaker
    rpc_endpoint: str
    rpc_timeout_ms: int
    health_timeout_ms: int
    metrics: RequestMetrics
    # CURVE keys for vnmgr (`[messaging] keys_dir`; the webapi role unless `client_key`
    # says otherwise); None when keys are off.
    keys: ClientKeys | None = None

    def __post_init__(self) -> None:
        # One client for all request threads: it keeps a socket per thread (a CURVE
        # handshake per request cost more than the request).
        self.rpc = RpcClient(self.rpc_endpoint, self.rpc_timeout_ms, keys=self.keys)

    @classmethod
    def from_config(cls, config: Config) -> Backend:
        """Raises vnet.keys.KeysError when keys_dir is set but its keys are unusable."""
        keys = client_keys(config, WEBAPI)
        engine = make_engine(config.database_url())
        timeout = config.get_int("messaging", "rpc_timeout_ms", 5000)
        return cls(engine, make_sessionmaker(engine), config.get("messaging", "rpc_endpoint"),
                   timeout, config.get_int("webapi", "health_timeout_ms", min(timeout, 1000)),
                   RequestMetrics(), keys)

    def call(self, op: str, resource: str | None = None, uuid: str | None = None,
             params: dict[str, Any] | None = None, timeout_ms: int | None = None) -> Any:
        """One vnmgr request on this thread's socket; raises ApiError (503: no answer)."""
        try:
            return self.rpc.call(op, resource, uuid, params, timeout_ms=timeout_ms)
        except ApiError as exc:
            if exc.status >= 500:
                self.metrics.vnmgr_failed()
            raise

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session: rolled back at the end, so it never holds a write lock."""
        with self.sessions() as session:
            try:
                yield session
            finally:
                session.rollback()


def backend() -> Backend:
    return current_app.extensions["vnet"]
