"""Port bindings: each vna reports which interfaces' ports appear on its bridge, and
vnmgr decides where every interface is bound (OpenVNet's active_interfaces, OVN's port
binding claimed by the chassis where the iface-id appears).

Rules, for an interface with claims from one or more datapaths:

* a claim from a datapath other than the interface's `owner_datapath_uuid` (when set) is
  **refused**: the owner is a constraint the user gave;
* otherwise the first claim holds the binding (**active**) and later ones wait
  (**standby**) until its port goes away (a vna reports it gone, or its datapath is
  deleted); then the oldest standby claim becomes active.  A live migration is exactly
  that: the port appears on hv2 and disappears from hv1.
* a datapath's report replaces all of its previous claims, so a port that vanished while
  its vna was down is released by the vna's next report.

Every change of a binding is an event like any other write, so every datapath learns
where to forward (vna.view.View.host_datapath).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from vnet import models as m
from vnet.errors import invalid
from vnet.serialize import Row
from vnmgr.handlers.tx import Tx, handler
from vnmgr.params import Params, as_integer

ACTIVE, STANDBY, REFUSED = "active", "standby", "refused"


def _claims(params: Params) -> dict[str, dict[str, Any]]:
    """`ports`: [{"interface_uuid", "port_name", "port_number", "detail"}] by interface;
    raises ApiError(422, "ports") when malformed."""
    ports = params.raw.get("ports", [])
    if not isinstance(ports, list) or not all(isinstance(p, dict) for p in ports):
        raise invalid("ports", "ports must be a list of objects")
    claims: dict[str, dict[str, Any]] = {}
    for port in ports:
        uuid = port.get("interface_uuid")
        if not isinstance(uuid, str) or not uuid:
            raise invalid("ports", "every port needs an interface_uuid")
        number = port.get("port_number")
        claims[uuid] = {
            "port_name": _short(port.get("port_name")),
            "port_number": None if number is None else as_integer("ports", number, 0, 2**32),
            "detail": _short(port.get("detail")),
        }
    return claims


def _short(value: Any) -> str | None:
    return None if value is None else str(value)[:255]


def _rows_of(tx: Tx, interface: m.Interface) -> list[m.ActiveInterface]:
    return list(tx.session.scalars(select(m.ActiveInterface).where(
        m.ActiveInterface.interface_id == interface.id).order_by(m.ActiveInterface.id)))


def _set_state(tx: Tx, row: m.ActiveInterface, state: str, reason: str | None = None) -> None:
    """`detail` is the vna's note on its port, except on a refused claim, where it is the
    reason for the refusal."""
    if state == REFUSED:
        detail = reason
    else:
        detail = None if row.state == REFUSED else row.detail
    singular = True if state == ACTIVE else None
    if (row.state, row.detail, row.singular) == (state, detail, singular):
        return
    row.state, row.detail, row.singular = state, detail, singular
    tx.changes.touch(row)


def settle(tx: Tx, interface: m.Interface) -> None:
    """Recompute the states of an interface's claims: refused off its owner, else the
    current active claim keeps it, else the oldest claim becomes active."""
    rows = _rows_of(tx, interface)
    owner = interface.owner_datapath_id
    allowed = [r for r in rows if owner is None or r.datapath_id == owner]
    holder = next((r for r in allowed if r.state == ACTIVE), None) or next(iter(allowed), None)
    # Demote first: the database allows one singular row per interface at any moment.
    for row in rows:
        if row is holder:
            continue
        if row in allowed:
            _set_state(tx, row, STANDBY)
        else:
            _set_state(tx, row, REFUSED, f"owner_datapath_uuid is {_uuid_of(tx, owner)}")
    if holder is not None:
        _set_state(tx, holder, ACTIVE)


def _uuid_of(tx: Tx, datapath_id: int | None) -> str | None:
    dp = tx.session.get(m.Datapath, datapath_id) if datapath_id is not None else None
    return dp.uuid if dp is not None else None


@handler("report", "active_interfaces")
def report_ports(tx: Tx, _uuid: str | None, params: Params) -> Row:
    """A vna's complete set of claims for its datapath (`datapath_uuid`, `ports`).
    Claims of unknown interfaces or of interfaces that are not vifs are ignored (the
    vna's model may be a moment behind); returns {"datapath_uuid", "bindings":
    {interface uuid: state}}.  Raises ApiError(404, "datapath_uuid"), ApiError(422,
    "ports")."""
    datapath = tx.ref(m.Datapath, params, "datapath_uuid")
    claims = _claims(params)
    interfaces = {i.uuid: i for i in tx.session.scalars(
        select(m.Interface).where(m.Interface.uuid.in_(claims), m.Interface.mode == "vif"))}
    existing = {row.interface_id: row for row in tx.session.scalars(
        select(m.ActiveInterface).where(m.ActiveInterface.datapath_id == datapath.id))}
    touched: list[m.Interface] = []
    for interface_id, row in existing.items():
        interface = tx.session.get(m.Interface, interface_id)
        if interface is None or interface.uuid not in interfaces:
            tx.changes.delete(row)
            if interface is not None:
                touched.append(interface)
    mine: dict[str, m.ActiveInterface] = {}
    for uuid, interface in interfaces.items():
        claim = claims[uuid]
        row = existing.get(interface.id)
        if row is None:
            # Standby until settled: only settle() hands out the one active row.
            row = m.ActiveInterface(uuid=tx.new_uuid("active_interfaces"),
                                    interface_id=interface.id, datapath_id=datapath.id,
                                    state=STANDBY, **claim)
            tx.changes.add(row)
            touched.append(interface)
        elif (row.port_name, row.port_number, row.detail) != tuple(claim.values()):
            row.port_name, row.port_number = claim["port_name"], claim["port_number"]
            row.detail = claim["detail"]
            tx.changes.touch(row)
            touched.append(interface)
        mine[uuid] = row
    # Only a claim that came, went or changed can move a binding: the report repeats the
    # datapath's whole set, and settling each unchanged claim again made a report cost
    # two queries per port (the slow part of a VM's arrival on a busy host).
    for interface in touched:
        settle(tx, interface)
    return {"datapath_uuid": datapath.uuid,
            "bindings": {uuid: row.state for uuid, row in mine.items()}}


def release_datapath(tx: Tx, datapath: m.Datapath) -> None:
    """Drop every claim of a datapath (it is being deleted) and settle the interfaces."""
    rows = list(tx.session.scalars(select(m.ActiveInterface).where(
        m.ActiveInterface.datapath_id == datapath.id)))
    interfaces = [tx.session.get(m.Interface, row.interface_id) for row in rows]
    for row in rows:
        tx.changes.delete(row)
    for interface in interfaces:
        settle(tx, interface)
