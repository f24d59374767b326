"""The API's interface row: the flat row plus its mac and ip leases, OpenVNet-style.

Shaped here once for both services: vnmgr replies to a write with it and webapi passes
that reply on, while webapi's GET and list read it from the database. Events and
snapshots keep the flat row (agents read leases as rows of their own).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vnet import models as m
from vnet.addr import format_ipv4, format_mac
from vnet.serialize import Row, serialize


def interface_row(session: Session, interface: m.Interface) -> Row:
    """One interface as GET /interfaces/<uuid> shows it (see with_leases)."""
    return with_leases(session, [interface], [serialize(session, interface)])[0]


def new_interface_row(session: Session, interface: m.Interface,
                      macs: Sequence[m.MacLease], ips: Sequence[m.IpLease],
                      networks: Mapping[int, str]) -> Row:
    """A just-created interface's row (see with_leases) from the leases its handler made
    (`networks`: id -> uuid of their networks), with no query for what a new interface
    cannot have yet: other leases or claims."""
    return _shaped([interface], [serialize(session, interface)], macs, ips, networks, {})[0]


def with_leases(session: Session, interfaces: Sequence[m.Resource],
                rows: Sequence[Row]) -> list[Row]:
    """Each flat row (serialize() of the interface at the same position) extended with
    `mac_leases` — `[{"uuid", "mac_address", "ip_leases": [{"uuid", "network_uuid",
    "ipv4_address"}]}]` in id order — and the first lease's `mac_address`,
    `ipv4_address` and `network_uuid` (None when there is none). Two queries for any
    number of interfaces, plus one for the networks."""
    ids = [obj.id for obj in interfaces]
    macs = session.scalars(select(m.MacLease).where(m.MacLease.interface_id.in_(ids))
                           .order_by(m.MacLease.id)).all()
    ips = session.scalars(select(m.IpLease).where(m.IpLease.interface_id.in_(ids))
                          .order_by(m.IpLease.id)).all()
    networks = {n.id: n.uuid for n in session.scalars(
        select(m.Network).where(m.Network.id.in_({ip.network_id for ip in ips})))}
    return _shaped(interfaces, rows, macs, ips, networks, _bindings(session, ids))


def _shaped(interfaces: Sequence[m.Resource], rows: Sequence[Row],
            macs: Sequence[m.MacLease], ips: Sequence[m.IpLease], networks: Mapping[int, str],
            bindings: Mapping[int, list[dict[str, Any]]]) -> list[Row]:
    """with_leases's rows from the leases (in id order), their networks and claims."""
    ips_by_mac: dict[int | None, list[dict[str, Any]]] = {}
    first_ip: dict[int, dict[str, Any]] = {}
    for ip in ips:
        brief = {"uuid": ip.uuid, "network_uuid": networks[ip.network_id],
                 "ipv4_address": format_ipv4(ip.ipv4_address)}
        ips_by_mac.setdefault(ip.mac_lease_id, []).append(brief)
        first_ip.setdefault(ip.interface_id, brief)
    macs_by_interface: dict[int, list[dict[str, Any]]] = {}
    for mac in macs:
        macs_by_interface.setdefault(mac.interface_id, []).append(
            {"uuid": mac.uuid, "mac_address": format_mac(mac.mac_address),
             "ip_leases": ips_by_mac.get(mac.id, [])})
    shaped = []
    for obj, row in zip(interfaces, rows, strict=True):
        leases = macs_by_interface.get(obj.id, [])
        nested_ips = [ip for lease in leases for ip in lease["ip_leases"]]
        # An ip lease without a mac lease still gives the interface its address.
        ip = nested_ips[0] if nested_ips else first_ip.get(obj.id)
        shaped.append({**row, "mac_leases": leases,
                       "mac_address": leases[0]["mac_address"] if leases else None,
                       "ipv4_address": ip["ipv4_address"] if ip else None,
                       "network_uuid": ip["network_uuid"] if ip else None,
                       "binding": _binding(obj, bindings.get(obj.id, []))})
    return shaped


def _bindings(session: Session, ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Each interface's claims (vnet.models.ActiveInterface), oldest first."""
    rows = session.scalars(select(m.ActiveInterface).where(
        m.ActiveInterface.interface_id.in_(ids)).order_by(m.ActiveInterface.id)).all()
    datapaths = {d.id: d.uuid for d in session.scalars(
        select(m.Datapath).where(m.Datapath.id.in_({r.datapath_id for r in rows})))}
    out: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r.interface_id, []).append({
            "datapath_uuid": datapaths[r.datapath_id], "state": r.state,
            "port_name": r.port_name, "port_number": r.port_number, "detail": r.detail})
    return out


def _binding(interface: m.Interface, claims: list[dict[str, Any]]) -> dict[str, Any] | None:
    """`{"state": "bound"|"unbound", "datapath_uuid", "port_name", "port_number",
    "detail" (the vna's note, e.g. an ignored duplicate port), "claims": [the other
    claims: standby or refused, with their detail]}` for a vif; None
    for the other modes (they are not bound to ports by the agents)."""
    if interface.mode != "vif":
        return None
    active = next((c for c in claims if c["state"] == "active"), None)
    return {"state": "bound" if active else "unbound",
            "datapath_uuid": active["datapath_uuid"] if active else None,
            "port_name": active["port_name"] if active else None,
            "port_number": active["port_number"] if active else None,
            "detail": active["detail"] if active else None,
            "claims": [c for c in claims if c is not active]}


def deleted_interface_row(row: Row) -> Row:
    """A deleted interface's flat row in the API's shape: its leases went with it."""
    return {**row, "mac_leases": [], "mac_address": None, "ipv4_address": None,
            "network_uuid": None,
            "binding": {"state": "unbound", "datapath_uuid": None, "port_name": None,
                        "port_number": None, "detail": None, "claims": []}
            if row.get("mode") == "vif" else None}
