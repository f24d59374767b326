"""Security groups: a name, a description and their rules as text."""

from __future__ import annotations

from vnet import models as m
from vnet.registry import RULES_MAX_LEN
from vnet.serialize import Row
from vnmgr.handlers.tx import Tx, apply_text, handler
from vnmgr.params import Params


@handler("create", "security_groups")
def create_security_group(tx: Tx, _uuid: str | None, params: Params) -> Row:
    group = m.SecurityGroup(uuid=tx.new_uuid("security_groups", params),
                            display_name=params.text("display_name"),
                            description=params.text("description"),
                            rules=params.text("rules", max_len=RULES_MAX_LEN))
    return tx.row(tx.changes.add(group))


@handler("update", "security_groups")
def update_security_group(tx: Tx, uuid: str | None, params: Params) -> Row:
    group = tx.get(m.SecurityGroup, uuid)
    apply_text(group, params, "display_name", "description")
    apply_text(group, params, "rules", max_len=RULES_MAX_LEN)
    return tx.row(tx.changes.touch(group))


@handler("delete", "security_groups")
def delete_security_group(tx: Tx, uuid: str | None, _params: Params) -> Row:
    """Takes its interface joins along."""
    group = tx.get(m.SecurityGroup, uuid)
    tx.delete_where(m.InterfaceSecurityGroup,
                    m.InterfaceSecurityGroup.security_group_id == group.id)
    return tx.changes.delete(group)
