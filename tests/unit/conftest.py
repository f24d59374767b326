"""Fixtures shared by unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from vnet import models as m


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    """A fresh SQLite database with the model's tables (test_model has its own)."""
    from vnet.db import make_engine, make_sessionmaker

    engine = make_engine(f"sqlite:///{tmp_path / 'vnmgr.sqlite3'}")
    m.Base.metadata.create_all(engine)
    with make_sessionmaker(engine)() as db:
        yield db
    engine.dispose()


