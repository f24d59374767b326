"""webapi.reads on the real database: a page costs a fixed number of queries, however
many rows it holds (the references are loaded once per table, not once per row)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, select

from vnet import models as m
from vnet.db import make_engine, make_sessionmaker
from vnet.registry import RESOURCES
from webapi.reads import rows

from .support import Api, random_mac, unique


@pytest.fixture
def statements(api: Api) -> Iterator[tuple[Any, list[str]]]:
    """A sessionmaker on the stack's database and the SQL statements it ran."""
    engine = make_engine(api.database_url)
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda _conn, _cursor, sql, *_rest: seen.append(sql))
    yield make_sessionmaker(engine), seen
    engine.dispose()


def _count(sessions: Any, seen: list[str], uuids: list[str]) -> tuple[int, list[dict[str, Any]]]:
    with sessions() as session:
        objs = session.scalars(select(m.Interface).where(m.Interface.uuid.in_(uuids))
                               .order_by(m.Interface.id)).all()
        seen.clear()
        shaped = rows(session, RESOURCES["interfaces"], objs)
        return len(seen), shaped


def test_a_page_costs_the_same_queries_for_2_or_12_rows(
        api: Api, network: dict[str, Any], statements: tuple[Any, list[str]]) -> None:
    datapath = api.create("datapaths", uuid=unique("dp"), dpid=f"0x{secrets.randbits(48):016x}",
                          node_id=unique("node"))
    uuids = [api.create("interfaces", uuid=unique("if"), network_uuid=network["uuid"],
                        owner_datapath_uuid=datapath["uuid"], mac_address=random_mac(),
                        ipv4_address=f"{network['ipv4_network'][:-1]}{10 + i}")["uuid"]
             for i in range(12)]
    sessions, seen = statements
    few, _ = _count(sessions, seen, uuids[:2])
    many, shaped = _count(sessions, seen, uuids)
    assert many == few, f"{few} queries for 2 rows but {many} for 12"
    # The references are still right: the rows name their datapath and network.
    assert {row["owner_datapath_uuid"] for row in shaped} == {datapath["uuid"]}
    assert {row["network_uuid"] for row in shaped} == {network["uuid"]}


@pytest.mark.parametrize("with_network", [True, False])
def test_a_create_answers_the_row_a_get_shows(api: Api, network: dict[str, Any],
                                              with_network: bool) -> None:
    """vnmgr shapes a new interface's row from the leases it just made; webapi's GET
    reads it back from the database: the same row either way."""
    fields: dict[str, Any] = {"uuid": unique("if"), "mac_address": random_mac()}
    if with_network:
        fields["network_uuid"] = network["uuid"]  # and an address allocated
    created = api.create("interfaces", **fields)
    assert created["mac_address"] == fields["mac_address"]
    assert (created["network_uuid"] is not None) == with_network
    assert api.get(f"/interfaces/{created['uuid']}").json() == created


def test_an_enum_filter_outside_its_values_is_refused(api: Api) -> None:
    """A write would refuse mode=bogus, so a list refuses it as a filter too (an empty
    page would hide the typo)."""
    refused = api.get("/interfaces", params={"mode": "bogus"})
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == "mode" and "vif" in refused.json()["message"]
    assert api.get("/interfaces", params={"mode": "host"}).status_code == 200
