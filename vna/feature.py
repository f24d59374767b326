"""What a vna feature is: the owners it computes flows for, its cookie kinds, its
dependency rule, and optionally the handler of the packets it punts.

A feature module (vna/features/*.py) defines one module-level ``FEATURE``; the registry
(vna.features.FEATURES) finds them, so adding a feature touches its own module, the table
declarations in vna.pipeline (if it adds a table), docs/pipeline.md and its tests.

Owner keys name the model object a group of flows is derived from: ``("datapath",)``,
``("network", uuid)``, ``("interface", uuid)``, ``("route_link", uuid)``,
``("security_group", uuid)``.  A flow
function takes (view, *owner args) and returns the owner's flows of this feature ([] for
an owner that no longer exists).  The dependency rule takes one model change and a view
(called with the view before and after the change) and returns the owners of this
feature whose flows may differ; a port change of an interface is presented as a change
of that interface (vna.dirty).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vna.flows import Flow
from vna.modelstore import Change
from vna.view import View

if TYPE_CHECKING:  # vna.punt imports the feature registry, which imports this module
    from vna.punt import PacketIn, PacketOut

OwnerKey = tuple[str, ...]
DATAPATH: OwnerKey = ("datapath",)
OWNER_RESOURCES = {"network": "networks", "interface": "interfaces", "route_link": "route_links",
                   "security_group": "security_groups"}

FlowFunction = Callable[..., list[Flow]]
DirtyRule = Callable[[Change, View], set[OwnerKey]]
# (view, packet-in) -> packets to send (PacketOut.port may be IN_PORT); see vna.punt
PacketInHandler = Callable[[View, "PacketIn"], list["PacketOut"]]


def no_dependencies(change: Change, view: View) -> set[OwnerKey]:
    """For features whose flows read nothing of the model (datapath-wide constants)."""
    return set()


@dataclass(frozen=True)
class Feature:
    """name: short label (logs, metrics); kinds: cookie kind numbers (1..255, unique
    across features) this feature's flows carry; owners: owner type -> flow function;
    dirty: the dependency rule; packet_in: handler of packets punted by flows of this
    feature's kinds (None if it punts nothing)."""

    name: str
    kinds: frozenset[int]
    owners: Mapping[str, FlowFunction]
    dirty: DirtyRule = no_dependencies
    packet_in: PacketInHandler | None = None
    doc: str = field(default="", compare=False)

    def flows(self, view: View, key: OwnerKey) -> list[Flow]:
        fn = self.owners.get(key[0])
        return fn(view, *key[1:]) if fn is not None else []
