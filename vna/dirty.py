"""Which owners' flows a model change (or a port change) can affect: the union of the
features' own dependency rules (Feature.dirty).

Each change is evaluated against the view before and after it, so both the owners that
used to depend on a row and those that now do are recomputed.  A port change of an
interface is presented to the rules as a change of that interface.  See "Owners and
dependencies" in docs/pipeline.md.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence

from vna import deps
from vna.desired import owners
from vna.feature import Feature, OwnerKey
from vna.features import FEATURES
from vna.modelstore import Change
from vna.view import LocalBinding, View


def dirty_owners(changes: Iterable[Change], old_view: View, new_view: View,
                 features: Sequence[Feature] = FEATURES) -> set[OwnerKey]:
    dirty: set[OwnerKey] = set()
    for change in changes:
        for view in (old_view, new_view):
            for feature in features:
                dirty |= feature.dirty(change, view)
    return dirty


def dirty_for_ports(old: LocalBinding, new: LocalBinding, view: View,
                    features: Sequence[Feature] = FEATURES) -> set[OwnerKey]:
    """Owners affected by a binding change (ports added/removed/renumbered)."""
    if (old.datapath_uuid, old.transport) != (new.datapath_uuid, new.transport):
        return owners(view)
    dirty: set[OwnerKey] = set()
    if old.tunnel_ofport != new.tunnel_ofport:
        dirty |= deps.all_of(view, "networks", "network")
        dirty |= deps.all_of(view, "interfaces", "interface")
        dirty |= deps.all_of(view, "route_links", "route_link")
    if old.neighbors != new.neighbors:  # a MAC binding learned, changed or expired
        changed = set(old.neighbors.items()) ^ set(new.neighbors.items())
        dirty |= deps.networks({network for (network, _ip), _mac in changed})
    moved = [
        Change("interfaces", iface, view.interface(iface), view.interface(iface))
        for iface in sorted(set(old.ports) | set(new.ports))
        if old.ports.get(iface) != new.ports.get(iface)
    ]
    # The rules see the ports before (the same model with the old binding) and after.
    before = copy.copy(view)
    before.binding, before.cache = old, {}
    return dirty | dirty_owners(moved, before, view, features)


__all__ = ["dirty_owners", "dirty_for_ports"]
