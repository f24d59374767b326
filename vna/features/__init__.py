"""The vna features: one module per feature, each defining a module-level ``FEATURE``
(vna.feature.Feature).  The registry below finds them, so a new feature is a new module
here - nothing else lists features.
"""

from __future__ import annotations

import importlib
import pkgutil

from vna.feature import Feature
from vna.pipeline import KIND_MISS


def _discover() -> tuple[Feature, ...]:
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        feature = getattr(module, "FEATURE", None)
        if isinstance(feature, Feature):
            found.append(feature)
    return tuple(found)


def _check(features: tuple[Feature, ...]) -> dict[int, Feature]:
    """Cookie kinds name exactly one feature (packet-ins are dispatched by kind)."""
    by_kind: dict[int, Feature] = {}
    for feature in features:
        for kind in feature.kinds:
            if not 0 < kind < 256:
                raise ValueError(f"{feature.name}: cookie kind {kind:#x} outside 1..255")
            if kind in by_kind:
                raise ValueError(
                    f"cookie kind {kind:#x} claimed by {by_kind[kind].name} and {feature.name}"
                )
            by_kind[kind] = feature
    return by_kind


FEATURES: tuple[Feature, ...] = _discover()
BY_KIND: dict[int, Feature] = _check(FEATURES)
assert KIND_MISS in BY_KIND, "the table_misses feature owns the miss flows"
