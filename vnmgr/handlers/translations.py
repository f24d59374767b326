"""OpenVNet's translations (vnet/lib/vnet/endpoints/1.0/translations.rb): NAT on a
router port on a physical network. Mode static_address holds 1:1 static addresses
(translation_addresses.py); mode snat (ours) translates what the port routes out to
its own address. No update, as in OpenVNet."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from vnet import models as m
from vnet.errors import conflict, invalid
from vnet.registry import TRANSLATION_MODES
from vnet.serialize import Row
from vnmgr.handlers.router_ports import is_router_port, physical_networks
from vnmgr.handlers.translation_addresses import delete_static
from vnmgr.handlers.tx import Tx, handler
from vnmgr.params import Params


def _check_port(tx: Tx, interface: m.Interface) -> None:
    """raises ApiError(422, "interface_uuid") unless the interface is a router port on a
    physical network: mode simulated, enable_routing, an address on a
    network_mode=physical network, an owner_datapath_uuid (OpenVNet's vna installs a
    translation only where its interface is local: wanedge's if-glo2vnetgw)."""
    if not is_router_port(interface):
        problem = "is not a router port (mode=simulated, enable_routing=true)"
    elif not physical_networks(tx, interface):
        problem = "has no address on a network_mode=physical network"
    elif interface.owner_datapath_id is None:
        problem = "has no owner_datapath_uuid (the datapath holding the physical segment)"
    else:
        return
    raise invalid("interface_uuid", f"{interface.uuid} {problem}: a translation needs a "
                                    "router port on a physical network")


@handler("create", "translations")
def create_translation(tx: Tx, _uuid: str | None, params: Params) -> Row:
    """Errors: see _check_port; ApiError(422, "mode") unless static_address or snat;
    ApiError(409, "interface_uuid") for a second snat translation of one interface."""
    uuid = tx.new_uuid("translations", params)
    interface = tx.ref(m.Interface, params, "interface_uuid")
    _check_port(tx, interface)
    params.text("mode", required=True)
    mode = params.choice("mode", TRANSLATION_MODES)
    passthrough = bool(params.boolean("passthrough", False))
    if mode == "snat":
        other = tx.first_with(m.Translation, {"interface_id": interface.id, "mode": "snat"})
        if other is not None:
            raise conflict("interface_uuid", f"{interface.uuid} already has snat translation "
                                             f"{other.uuid}")
    row = m.Translation(uuid=uuid, interface_id=interface.id, mode=mode,
                        passthrough=passthrough)
    return tx.row(tx.changes.add(row))


def _delete_translation(tx: Tx, row: m.Translation) -> Row:
    statics = tx.session.scalars(select(m.TranslationStaticAddress).where(
        m.TranslationStaticAddress.translation_id == row.id)).all()
    for static in statics:
        delete_static(tx, static)
    return tx.changes.delete(row)


def delete_translations(tx: Tx, *conditions: Any) -> None:
    """Delete the matching translations with their static addresses."""
    for row in tx.session.scalars(select(m.Translation).where(*conditions)).all():
        _delete_translation(tx, row)


@handler("delete", "translations")
def delete_translation(tx: Tx, uuid: str | None, _params: Params) -> Row:
    """Takes its static addresses along, and the leases they made."""
    return _delete_translation(tx, tx.get(m.Translation, uuid))
