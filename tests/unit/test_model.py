"""Model constraints: the database itself refuses duplicates and dangling references.

Checked both on the schema the models declare and on the one the Alembic migrations
build, so the two cannot disagree about a constraint.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
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
