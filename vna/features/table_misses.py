"""Datapath-wide explicit table misses, generated from the table declarations; also the
owner of the merged conjunction clause flows' cookie kind (vna.desired merges them)."""

from __future__ import annotations

from vna.feature import Feature
from vna.pipeline import KIND_CLAUSE, KIND_MISS, miss_flows

FEATURE = Feature(
    name="table_misses",
    kinds=frozenset({KIND_MISS, KIND_CLAUSE}),
    owners={"datapath": lambda view: miss_flows()},
)
