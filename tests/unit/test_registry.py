"""The resource registry agrees with the model it names, and stays light to import."""

from __future__ import annotations

import subprocess
import sys

import pytest

from vnet import ids
from vnet import models as m
from vnet.registry import INTERNAL, JOINS, LISTINGS, NESTED, RESOURCES, TOP_LEVEL, Resource


@pytest.mark.parametrize("resource", RESOURCES.values(), ids=lambda r: r.name)
def test_stored_fields_are_exactly_the_model_columns(resource: Resource) -> None:
    model = resource.model
    assert model.__tablename__ == resource.name
    assert m.MODELS[resource.name] is model
    stored = {f.column for f in resource.all_fields() if f.stored}
    assert stored == set(model.__table__.c.keys())


@pytest.mark.parametrize("resource", RESOURCES.values(), ids=lambda r: r.name)
def test_references_name_their_foreign_keys(resource: Resource) -> None:
    for column, field in resource.references().items():
        (fk,) = resource.model.__table__.c[column].foreign_keys
        assert fk.column.table.name == field.ref


def test_links_name_registered_resources() -> None:
    assert set(TOP_LEVEL) <= set(RESOURCES)
    assert {j.resource.name for j in JOINS}.isdisjoint(TOP_LEVEL)
    nested = {n.resource for n in NESTED}
    assert set(TOP_LEVEL) | {j.resource.name for j in JOINS} | set(INTERNAL) | nested == set(
        RESOURCES)
    for listing in LISTINGS:
        columns = RESOURCES[listing.through].model.__table__.c
        assert {listing.parent_column, listing.child_column} <= set(columns.keys())


def test_prefixes_are_unique_and_used_by_ids() -> None:
    assert len({r.prefix for r in RESOURCES.values()}) == len(RESOURCES)
    for name, resource in RESOURCES.items():
        assert ids.random_uuid(name).startswith(resource.prefix + "-")


def test_importing_the_registry_loads_no_sqlalchemy() -> None:
    code = "import sys, vnet.registry; sys.exit('sqlalchemy' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
