"""Model constraints: the database itself refuses duplicates and dangling references.

Checked both on the schema the models declare and on the one the Alembic migrations
build, so the two cannot disagree about a constraint.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Index, PrimaryKeyConstraint, UniqueConstraint, inspect, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vnet import models as m
from vnet.db import make_engine, make_sessionmaker, upgrade


@pytest.fixture(params=["metadata", "migrations"])
def session(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Session]:
    url = f"sqlite:///{tmp_path / 'model.sqlite3'}"
    engine = make_engine(url)
    if request.param == "metadata":
        m.Base.metadata.create_all(engine)
    else:
        upgrade(url)
    with make_sessionmaker(engine)() as db:
        yield db
    engine.dispose()


def _base(db: Session) -> tuple[m.Network, m.Interface]:
    network = m.Network(uuid="nw-a", ipv4_network=0x0A000000, ipv4_prefix=24, segment_id=1)
    interface = m.Interface(uuid="if-a")
    db.add_all([network, interface])
    db.flush()
    return network, interface


def _refused(db: Session, *rows: m.Base) -> None:
    db.add_all(rows)
    with pytest.raises(IntegrityError):
        db.flush()
    db.rollback()


def test_uuid_is_unique(session: Session) -> None:
    _base(session)
    _refused(session, m.Interface(uuid="if-a"))


def test_mac_lease_is_unique(session: Session) -> None:
    _, interface = _base(session)
    session.add(m.MacLease(uuid="ml-1", interface_id=interface.id, mac_address=1))
    session.flush()
    _refused(session, m.MacLease(uuid="ml-2", interface_id=interface.id, mac_address=1))


def test_ip_unique_per_network_only(session: Session) -> None:
    network, interface = _base(session)
    other = m.Network(uuid="nw-b", ipv4_network=0x0A000000, ipv4_prefix=24, segment_id=2)
    session.add(other)
    session.flush()
    session.add_all([
        m.IpLease(uuid="il-1", interface_id=interface.id, network_id=network.id,
                  ipv4_address=0x0A000005),
        m.IpLease(uuid="il-2", interface_id=interface.id, network_id=other.id,
                  ipv4_address=0x0A000005),
    ])
    session.flush()
    _refused(session, m.IpLease(uuid="il-3", interface_id=interface.id,
                                network_id=network.id, ipv4_address=0x0A000005))


def test_segment_id_and_dpid_are_unique(session: Session) -> None:
    _base(session)
    _refused(session, m.Network(uuid="nw-c", ipv4_network=0, ipv4_prefix=8, segment_id=1))
    session.add(m.Datapath(uuid="dp-1", dpid="0x1", node_id="a"))
    session.flush()
    _refused(session, m.Datapath(uuid="dp-2", dpid="0x1", node_id="b"))


def test_references_must_exist(session: Session) -> None:
    _base(session)
    _refused(session, m.MacLease(uuid="ml-9", interface_id=999, mac_address=9))


def test_join_rows_are_unique_per_pair(session: Session) -> None:
    network, _ = _base(session)
    datapath = m.Datapath(uuid="dp-1", dpid="0x1", node_id="a")
    session.add(datapath)
    session.flush()
    session.add(m.DatapathNetwork(uuid="dpn-1", datapath_id=datapath.id, network_id=network.id,
                                  broadcast_mac_address=1))
    session.flush()
    _refused(session, m.DatapathNetwork(uuid="dpn-2", datapath_id=datapath.id,
                                        network_id=network.id, broadcast_mac_address=2))


def test_required_columns(session: Session) -> None:
    _refused(session, m.Datapath(uuid="dp-1", node_id="a"))  # no dpid


def _indexes(url: str) -> set[tuple[str, str, tuple[str, ...], bool]]:
    engine = make_engine(url)
    try:
        inspector = inspect(engine)
        return {(table, index["name"], tuple(index["column_names"]), bool(index["unique"]))
                for table in inspector.get_table_names()
                for index in inspector.get_indexes(table)}
    finally:
        engine.dispose()


def test_the_migrations_build_the_indexes_the_models_declare(tmp_path: Path) -> None:
    declared, migrated = (f"sqlite:///{tmp_path / name}" for name in ("a.db", "b.db"))
    engine = make_engine(declared)
    m.Base.metadata.create_all(engine)
    engine.dispose()
    upgrade(migrated)
    assert _indexes(migrated) == _indexes(declared)


@pytest.mark.parametrize("index", m.REFERENCE_INDEXES, ids=lambda index: index.name)
def test_a_look_up_by_reference_searches_an_index(session: Session, index: Index) -> None:
    """SQLite indexes no foreign key by itself: without these, finding a row's leases or
    claims scanned the whole table (vnet.models._index_references)."""
    column = next(iter(index.columns)).name
    plan = " ".join(str(row[3]) for row in session.execute(
        text(f"EXPLAIN QUERY PLAN SELECT * FROM {index.table.name} WHERE {column} = 1")))
    assert plan.startswith("SEARCH") and "USING" in plan, plan


def test_every_reference_column_leads_an_index() -> None:
    for table in m.Base.metadata.sorted_tables:
        led = {next(iter(i.columns)).name for i in table.indexes}
        # A foreign key constraint is no index: only unique and primary keys count.
        led |= {next(iter(c.columns)).name for c in table.constraints
                if isinstance(c, UniqueConstraint | PrimaryKeyConstraint) and c.columns}
        for column in table.columns:
            if column.foreign_keys:
                assert column.name in led or column.unique, (table.name, column.name)
