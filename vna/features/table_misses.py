"""Datapath-wide explicit table misses, generated from the table declarations."""

from __future__ import annotations

from vna.feature import Feature
from vna.pipeline import KIND_MISS, miss_flows

FEATURE = Feature(
    name="table_misses",
    kinds=frozenset({KIND_MISS}),
    owners={"datapath": lambda view: miss_flows()},
)
