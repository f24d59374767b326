"""Real vnmgr and vnet-webapi processes over real ZeroMQ, once per database backend.

Both backends are always run: MariaDB being unreachable is a failure, not a skip,
because a silently skipped backend is how MySQL-only bugs ship.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from lab.hosts import Lab
from lab.mysql import create_mysql_database
from lab.services import Services

from .support import Api, unique

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
            url = create_mysql_database(lab)
        services = Services(lab, url, extra_env=SERVICE_ENV)
        vnmgr = services.start_vnmgr()
        services.start_webapi()
        with requests.Session() as http:
            yield Api(services, vnmgr, url, http)


@pytest.fixture(scope="module")
def network(api: Api) -> dict[str, Any]:
    """A /24 network private to the calling test module."""
    octet = secrets.randbelow(200) + 10
    return api.create("networks", uuid=unique("nw"), ipv4_network=f"10.{octet}.0.0",
                      ipv4_prefix=24)
