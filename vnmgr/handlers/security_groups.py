"""Security groups: a name, a description and their rules as text (OpenVNet's
vnet/lib/vnet/endpoints/1.0/security_groups.rb, rules as vnet/helpers/security_group.rb
reads them: vnet/sg_rules.py)."""

from __future__ import annotations

from sqlalchemy import select

from vnet import models as m
from vnet.errors import conflict, invalid
from vnet.registry import RULES_MAX_LEN
from vnet.serialize import Row
from vnet.sg_rules import RuleError, parse_rule, parse_rules, split_rules
from vnmgr.handlers.tx import Tx, apply_text, handler
from vnmgr.params import Params


def checked_rules(tx: Tx, params: Params, own_uuid: str) -> str | None:
    """The `rules` text, or None when absent; raises ApiError(422, "rules") naming the
    line and rule that does not parse, or that names a security group which does not
    exist (a group may name itself, `own_uuid`)."""
    text = params.text("rules", max_len=RULES_MAX_LEN)
    try:
        for rule in parse_rules(text):
            if rule.group not in (None, own_uuid) \
                    and tx.find(m.SecurityGroup, rule.group) is None:
                raise RuleError(rule.line, rule.text, f"security group {rule.group} does "
                                                      "not exist")
    except RuleError as exc:
        raise invalid("rules", f"rules {exc}") from None
    return text


def referenced_groups(text: str | None) -> set[str]:
    """The uuids of the groups whose members a rules text admits; a rule that does not
    parse (stored before rules were checked) names none."""
    groups = set()
    for line, rule in split_rules(text):
        try:
            group = parse_rule(line, rule).group
        except RuleError:
            continue
        if group is not None:
            groups.add(group)
    return groups


@handler("create", "security_groups")
def create_security_group(tx: Tx, _uuid: str | None, params: Params) -> Row:
    """Errors: see checked_rules."""
    uuid = tx.new_uuid("security_groups", params)
    group = m.SecurityGroup(uuid=uuid, display_name=params.text("display_name"),
                            description=params.text("description"),
                            rules=checked_rules(tx, params, uuid))
    return tx.row(tx.changes.add(group))


@handler("update", "security_groups")
def update_security_group(tx: Tx, uuid: str | None, params: Params) -> Row:
    """New rules replace the old ones; an empty `rules` clears them. Errors: see
    checked_rules."""
    group = tx.get(m.SecurityGroup, uuid)
    apply_text(group, params, "display_name", "description")
    if params.has("rules"):
        group.rules = checked_rules(tx, params, group.uuid)
    elif params.clears("rules"):
        group.rules = None
    return tx.row(tx.changes.touch(group))


@handler("delete", "security_groups")
def delete_security_group(tx: Tx, uuid: str | None, _params: Params) -> Row:
    """Takes its interface joins along; raises ApiError(409, "uuid") naming another group
    whose rules reference it."""
    group = tx.get(m.SecurityGroup, uuid)
    others = tx.session.scalars(select(m.SecurityGroup).where(
        m.SecurityGroup.id != group.id,
        m.SecurityGroup.rules.contains(group.uuid, autoescape=True)))
    for other in others:
        if group.uuid in referenced_groups(other.rules):
            raise conflict("uuid", f"{group.uuid} is referenced by the rules of {other.uuid}: "
                                   "change them first")
    tx.delete_where(m.InterfaceSecurityGroup,
                    m.InterfaceSecurityGroup.security_group_id == group.id)
    return tx.changes.delete(group)
