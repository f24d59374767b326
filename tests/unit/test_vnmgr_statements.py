"""The SQL an interface create costs in vnmgr: a fixed number of statements, whatever the
model's size (each is a round trip to MariaDB; 21 had crept in where 11 do)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq
from sqlalchemy import event

from vnet import models as m
from vnet.db import make_engine, make_sessionmaker
from vnmgr.service import Vnmgr

# select datapath, select network, uuid checks (interface, mac lease, ip lease), MAC in
# use, IP in use, three inserts, the event row. No row is loaded twice.
CREATE_STATEMENTS = 11


@pytest.fixture
def vnmgr(tmp_path: Path) -> Iterator[tuple[Vnmgr, list[str]]]:
    """An in-process vnmgr (handle() called directly) and the statements it runs."""
    engine = make_engine(f"sqlite:///{tmp_path / 'vnmgr.sqlite3'}")
    m.Base.metadata.create_all(engine)
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda _conn, _cursor, sql, *_rest: seen.append(sql))
    context = zmq.Context()
    service = Vnmgr(make_sessionmaker(engine), "inproc://rpc", "inproc://pub",
                    heartbeat_interval=1, context=context)
    yield service, seen
    service.close()
    context.destroy(linger=0)
    engine.dispose()


def _create(service: Vnmgr, resource: str, params: dict[str, Any]) -> dict[str, Any]:
    reply = service.handle({"op": "create", "resource": resource, "uuid": None,
                            "params": params, "expires_at": time.time() + 10})
    assert reply["ok"], reply
    return reply["result"]


def test_an_interface_create_costs_a_fixed_number_of_statements(
        vnmgr: tuple[Vnmgr, list[str]]) -> None:
    service, seen = vnmgr
    _create(service, "networks", {"uuid": "nw-a", "ipv4_network": "10.1.0.0",
                                  "ipv4_prefix": "16"})
    _create(service, "datapaths", {"uuid": "dp-a", "dpid": "0x1", "node_id": "a"})
    counts = []
    for i in range(30):
        seen.clear()
        row = _create(service, "interfaces", {
            "owner_datapath_uuid": "dp-a", "network_uuid": "nw-a",
            "mac_address": f"02:00:00:00:01:{i:02x}", "ipv4_address": f"10.1.0.{10 + i}"})
        assert row["owner_datapath_uuid"] == "dp-a" and row["network_uuid"] == "nw-a"
        counts.append(sum(1 for sql in seen if not sql.startswith(("BEGIN", "COMMIT"))))
    assert set(counts) == {CREATE_STATEMENTS}, counts
