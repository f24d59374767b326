"""The model a vna computes its flows from, read through the HTTP API (for `vnctl trace`).

The API serves the same rows vnmgr sends the agents (docs/model-slice.md), but some only
under their parent: datapath_networks and datapath_route_links under each datapath,
filter_statics, translation_static_addresses and dns_records under their row, the
interfaces of a security group under the group, and active_interfaces only as each
interface's `binding`.  `read_model` gathers them all into the vna's shape,
`{resource: {uuid: row}}` with every resource of the registry present.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from vnet.registry import RESOURCES, TOP_LEVEL

Row = dict[str, Any]
Model = dict[str, dict[str, Row]]
Lister = Callable[[str], list[Row]]  # API path -> every row of that list (all pages)

# Child lists read once per parent row: (resource, parent resource, path under the parent).
_UNDER_PARENT = (
    ("datapath_networks", "datapaths", "networks"),
    ("datapath_route_links", "datapaths", "route_links"),
    ("filter_statics", "filters", "static"),
    ("translation_static_addresses", "translations", "static_address"),
    ("dns_records", "dns_services", "dns_records"),
)
# Convenience fields the API nests into rows; agents never see them.
_NESTED_FIELDS = ("mac_leases", "binding", "created_at", "updated_at")


def read_model(list_all: Lister) -> Model:
    """Every row the agents' pipelines read, as `{resource: {uuid: row}}`.

    `list_all(path)` returns the rows of one API list (e.g. `vnctl.client.Client.list_all`);
    its errors propagate.  Rows the API only shows inside others (a vif's binding, the
    members of a security group) get made-up ids, which only name flows (cookies).
    """
    model: Model = {name: {} for name in RESOURCES}
    interfaces = list_all("interfaces")  # with their bindings, read once
    for name in TOP_LEVEL:
        model[name] = _index(interfaces if name == "interfaces" else list_all(name))
    for resource, parent, path in _UNDER_PARENT:
        for uuid in model[parent]:
            model[resource].update(_index(list_all(f"{parent}/{uuid}/{path}")))
    model["interface_security_groups"] = _index(_memberships(model, list_all))
    model["active_interfaces"] = _index(_bindings(interfaces))
    return model


def _index(rows: list[Row]) -> dict[str, Row]:
    return {row["uuid"]: {k: v for k, v in row.items() if k not in _NESTED_FIELDS}
            for row in rows}


def _memberships(model: Model, list_all: Lister) -> Iterator[Row]:
    n = 0
    for group in model["security_groups"]:
        for member in list_all(f"security_groups/{group}/interfaces"):
            n += 1
            yield {"uuid": f"isg-{member['uuid']}-{group}", "id": n,
                   "interface_uuid": member["uuid"], "security_group_uuid": group}


def _bindings(interfaces: list[Row]) -> Iterator[Row]:
    """active_interfaces rows from each vif's `binding` (webapi: the active claim, then
    the standby and refused ones)."""
    n = 0
    for iface in interfaces:
        binding = iface.get("binding")
        if not isinstance(binding, dict):
            continue
        claims = list(binding.get("claims") or [])
        if binding.get("state") == "bound":
            claims.insert(0, {**binding, "state": "active"})
        for claim in claims:
            n += 1
            active = claim.get("state") == "active"
            yield {"uuid": f"ai-{iface['uuid']}-{claim['datapath_uuid']}", "id": n,
                   "interface_uuid": iface["uuid"], "datapath_uuid": claim["datapath_uuid"],
                   "port_name": claim.get("port_name"), "port_number": claim.get("port_number"),
                   "state": claim.get("state"), "singular": True if active else None,
                   "detail": claim.get("detail")}
