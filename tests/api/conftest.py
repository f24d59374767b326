"""Real vnmgr and vnet-webapi processes over real ZeroMQ, once per database backend.

Both backends are always run: MariaDB being unreachable is a failure, not a skip,
because a silently skipped backend is how MySQL-only bugs ship.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest
import requests

from vnet.lab.hosts import Lab
from vnet.lab.services import Services

from .support import Api, unique

MYSQL_SERVER = {"host": "127.0.0.1", "user": "root", "password": ""}

# Short timeouts keep the "vnmgr down" cases fast; heartbeats let a subscriber know
# quickly that its subscription is live.
SERVICE_ENV = {
    "VNET_MESSAGING_RPC_TIMEOUT_MS": "2000",
    "VNET_WEBAPI_HEALTH_TIMEOUT_MS": "500",
    "VNET_VNMGR_HEARTBEAT_INTERVAL": "0.2",
}


@pytest.fixture(scope="session", params=["sqlite", "mysql"])
def api(request: pytest.FixtureRequest) -> Iterator[Api]:
    with Lab() as lab:
        if request.param == "sqlite":
            url = f"sqlite:///{lab.dir / 'vnet.sqlite3'}"
        else:
            url = _create_mysql_database(lab)
        services = Services(lab, url, extra_env=SERVICE_ENV)
        vnmgr = services.start_vnmgr()
        services.start_webapi()
        with requests.Session() as http:
            yield Api(services, vnmgr, url, http)


def _create_mysql_database(lab: Lab) -> str:
    name = f"vnet_test_{secrets.token_hex(6)}"
    connection = pymysql.connect(**MYSQL_SERVER)  # raises: an unreachable server fails
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    connection.close()

    def drop() -> None:
        with pymysql.connect(**MYSQL_SERVER) as conn, conn.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name}")

    # Registered first, so it runs last: after the services have stopped using it.
    lab.on_close(drop)
    return f"mysql+pymysql://root@127.0.0.1/{name}"


@pytest.fixture(scope="module")
def network(api: Api) -> dict[str, Any]:
    """A /24 network private to the calling test module."""
    octet = secrets.randbelow(200) + 10
    return api.create("networks", uuid=unique("nw"), ipv4_network=f"10.{octet}.0.0",
                      ipv4_prefix=24)
