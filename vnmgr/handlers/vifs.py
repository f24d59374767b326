"""What only a vif may have: security groups and filters (OpenVNet applies both to a VM's
own port, so a router port or a host interface in a group would silently be unfiltered)."""

from __future__ import annotations

from vnet import models as m
from vnet.errors import conflict, invalid
from vnmgr.handlers.tx import Tx
from vnmgr.params import Params


def vif(tx: Tx, params: Params, field: str = "interface_uuid") -> m.Interface:
    """The interface named by `field`; raises ApiError(422, field) when absent or not
    mode vif, ApiError(404, field) when unknown."""
    interface = tx.ref(m.Interface, params, field)
    if interface.mode != "vif":
        raise invalid(field, f"{interface.uuid} is mode {interface.mode}: only a vif has "
                             "security groups and filters")
    return interface


FILTERING_FLAGS = ("ingress_filtering_enabled", "enable_filtering")


def check_filtering_flags(interface: m.Interface, params: Params) -> None:
    """Only a vif is filtered: raises ApiError(422, flag) when this request turns a
    filtering flag on for another mode, ApiError(409, "mode") when it changes the mode
    of a vif whose flag is on."""
    if interface.mode == "vif":
        return
    for flag in FILTERING_FLAGS:
        if getattr(interface, flag):
            if params.has(flag):
                raise invalid(flag, f"{interface.uuid} is mode {interface.mode}: only a vif "
                                    "is filtered")
            raise conflict("mode", f"{interface.uuid} has {flag}: only a vif is filtered, "
                                   "turn it off first")


def keep_vif(tx: Tx, interface: m.Interface) -> None:
    """raises ApiError(409, "mode") when a vif in security groups or with filters would
    stop being one."""
    if interface.mode == "vif":
        return
    uses = {"security groups": (m.InterfaceSecurityGroup,
                                m.InterfaceSecurityGroup.interface_id == interface.id),
            "filters": (m.Filter, m.Filter.interface_id == interface.id)}
    for label, (model, condition) in uses.items():
        if tx.exists(model, condition):
            raise conflict("mode", f"{interface.uuid} has {label}: only a vif has them, "
                                   "remove them first")
