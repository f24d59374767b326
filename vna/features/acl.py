"""Security groups and static filters at the edge: a stateful firewall per vif, enforced
by the datapath that delivers to it (to-VM stage) whatever path a packet took.

Which vifs are filtered (OpenVNet's semantics, docs/api.md "Enforcement"):

- a vif in one or more security groups, or with ``ingress_filtering_enabled`` (OpenVNet's
  legacy flag) or ``enable_filtering`` (its static-filter flag), accepts new inbound
  connections only as its groups' rules, its groups' isolation (members accept each
  other) and its static filters allow;
- a vif with ``enable_filtering`` also sends only what its static filters allow
  (default drop both ways, ``ingress_passthrough``/``egress_passthrough`` flip a
  direction's default);
- replies of allowed connections pass both ways: every filtered vif has one conntrack
  zone (its ofport), used by both its from-VM and its to-VM stage.

Flows (docs/pipeline.md "Security groups"):

- datapath-wide: the conntrack verdicts of FROM_VM_ACL/TO_VM_ACL (invalid, replies,
  blocked, default deny) and the two commit tables;
- per filtered local vif (owner: the interface): FROM_VM_CT/TO_VM_CT (zone into reg13,
  ct), its static filters, and clause 1 of its groups' conjunctions (`reg15 = vif`);
- per member interface anywhere (owner: the interface): clause 2 for its addresses
  (`ipv4_src = address`) of every rule naming one of its groups, and of its groups'
  isolation;
- per group with a local member (owner: the group): one conj_id flow per rule and for
  its isolation, and the rules' CIDR (clause 2) and protocol/port (clause 3) clauses.

Clause flows with one match are merged across owners by vna.desired, so the flow count
grows with members + rules, never members x rules.  A rule that stops allowing a
connection cuts it: the connection's next packet in its original direction finds no rule,
is committed with ct_mark BLOCKED and dropped; its replies are then dropped too (OVN's
ct_label.blocked).
"""

from __future__ import annotations

import functools
import logging

from vna import deps
from vna.actions import Conjunction, Ct, CtClear, SetField
from vna.feature import DATAPATH, Feature, OwnerKey
from vna.flows import Flow, Match, ipv4_prefix_value, make_match
from vna.modelstore import Change
from vna.pipeline import (
    CT_MARK_BLOCKED,
    CT_ZONE_MASK,
    EGRESS_FILTERED,
    ETH_ARP,
    ETH_IPV4,
    FROM_VM_TRACKED,
    IP_PROTO_ICMP,
    KIND_CLAUSE,
    REG_CT,
    REG_OUTPORT,
    TO_VM_TRACKED,
    AclPrio,
    Prio,
    Table,
)
from vna.view import Row, View
from vnet.sg_rules import RULE_SLOTS, Rule, RuleError, parse_rule, port_masks, split_rules

log = logging.getLogger("vna.acl")

KIND_VIF = 0xA0  # obj interfaces.id: a filtered vif's conntrack and static filter flows
KIND_GROUP = 0xA1  # obj security_groups.id: conj_id flows of a group's rules
KIND_STATE = 0xA2  # datapath-wide conntrack verdicts and commit tables

# ct_state bits (OVS CS_*)
NEW, EST, REL, RPL, INV, TRK = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
_L4_DST = {6: "tcp_dst", 17: "udp_dst"}
_PROTOCOLS = {"tcp": 6, "udp": 17, "icmp": IP_PROTO_ICMP}


# --- who is filtered ----------------------------------------------------------------
def _vif(view: View, interface_uuid: str) -> Row | None:
    row = view.interface(interface_uuid)
    return row if row is not None and row.get("mode") == "vif" else None


def is_tracked(view: View, interface_uuid: str) -> bool:
    """Inbound filtering is on: in a group, or either OpenVNet filtering flag."""
    row = _vif(view, interface_uuid)
    return row is not None and bool(
        view.security_groups_of(interface_uuid) or row.get("ingress_filtering_enabled")
        or row.get("enable_filtering"))


def _local_port(view: View, interface_uuid: str) -> int | None:
    return view.ofport(interface_uuid) if _vif(view, interface_uuid) else None


def local_groups(view: View) -> frozenset[str]:
    """Groups with a member attached to this bridge: only their rules are installed."""
    cached = view.cache.get("acl_local_groups")
    if cached is None:
        cached = frozenset(g for iface in view.binding.ports
                           if _local_port(view, iface) is not None
                           for g in view.security_groups_of(iface))
        view.cache["acl_local_groups"] = cached
    return cached


# --- rules --------------------------------------------------------------------------
@functools.lru_cache(maxsize=4096)
def _parse(text: str) -> tuple[Rule, ...]:
    """A group's valid rules.  vnmgr refuses bad rules, but rows written before it did
    (or by hand) may hold some: they are skipped with a warning, as OpenVNet did."""
    rules = []
    for line, rule in split_rules(text):
        try:
            rules.append(parse_rule(line, rule))
        except RuleError as exc:
            log.warning("security group rule ignored: %s", exc)
    return tuple(rules[:RULE_SLOTS - 1])


def rules_of(view: View, group_uuid: str) -> tuple[Rule, ...]:
    row = view.row("security_groups", group_uuid)
    return _parse(row.get("rules") or "") if row is not None else ()


def conj_id(view: View, group_uuid: str, index: int) -> int:
    """Conjunction id of a group's rule (index 1..) or of its isolation (index 0)."""
    return int(view.row("security_groups", group_uuid)["id"]) * RULE_SLOTS + index


def referencing(view: View) -> dict[str, list[tuple[str, int]]]:
    """Referenced group -> the (group, rule index) of every rule naming it."""
    cached = view.cache.get("acl_refs")
    if cached is None:
        cached = {}
        for group in view.uuids("security_groups"):
            for index, rule in enumerate(rules_of(view, group), start=1):
                if rule.group is not None:
                    cached.setdefault(rule.group, []).append((group, index))
        view.cache["acl_refs"] = cached
    return cached


def _clause(match: Match, conj: list[Conjunction]) -> Flow:
    """A contribution to a merged clause flow (vna.desired)."""
    return Flow(Table.TO_VM_ACL, AclPrio.RULE, match, tuple(conj), kind=KIND_CLAUSE)


def _ip(**fields: object) -> Match:
    return make_match({k: v for k, v in fields.items() if v is not None}, eth_type=ETH_IPV4)


def _l4(protocol: str, port_min: int | None, port_max: int | None) -> list[dict]:
    """Protocol/port matches (OpenFlow masks for a port range)."""
    proto = _PROTOCOLS[protocol]
    if protocol == "icmp":
        return [{"ip_proto": proto} if port_min is None
                else {"ip_proto": proto, "icmpv4_type": port_min}]
    if port_min is None:
        return [{"ip_proto": proto}]
    return [{"ip_proto": proto, _L4_DST[proto]: value if mask == 0xFFFF else (value, mask)}
            for value, mask in port_masks(port_min, port_max or port_min)]


# --- owner: datapath ----------------------------------------------------------------
def datapath_flows(view: View) -> list[Flow]:
    flows = []
    for acl, bit, allowed, commit in (
        (Table.FROM_VM_ACL, FROM_VM_TRACKED, Table.ARP, Table.FROM_VM_COMMIT),
        (Table.TO_VM_ACL, TO_VM_TRACKED, Table.OUTPUT, Table.TO_VM_COMMIT),
    ):
        mine = {REG_CT: (bit, bit)}
        blocked = CT_MARK_BLOCKED
        spec = [
            (AclPrio.INVALID, {"ct_state": (TRK | INV, TRK | INV)}, (), None),
            (AclPrio.REPLY, {"ct_state": (TRK | EST | RPL, TRK | EST | RPL),
                             "ct_mark": (0, blocked)}, (), allowed),
            (AclPrio.REPLY - 1, {"ct_state": (TRK | REL, TRK | REL), "ct_mark": (0, blocked)},
             (), allowed),
            (AclPrio.BLOCKED_REPLY, {"ct_state": (TRK | RPL, TRK | RPL)}, (), None),
            (AclPrio.BLOCKED_REPLY - 1, {"ct_state": (TRK | REL, TRK | REL)}, (), None),
            # An established connection in its original direction that no rule allows
            # any more: block it (its replies too) and drop.
            (AclPrio.DENY_ESTABLISHED,
             {"eth_type": ETH_IPV4, "ct_state": (TRK | EST, TRK | EST | RPL)},
             (Ct(commit=True, zone_src=REG_CT, exec=(SetField("ct_mark", blocked),)),),
             None),
            (AclPrio.DENY, {}, (), None),
        ]
        flows += [Flow(acl, prio, make_match(mine, **match), actions, goto=goto,
                       kind=KIND_STATE) for prio, match, actions, goto in spec]
        commit_actions = (Ct(commit=True, zone_src=REG_CT, exec=(SetField("ct_mark", 0),)),)
        flows += [
            Flow(commit, Prio.NORMAL, make_match(eth_type=ETH_IPV4, **state), commit_actions,
                 goto=allowed, kind=KIND_STATE)
            for state in ({"ct_state": (TRK | NEW, TRK | NEW)},
                          {"ct_state": (TRK | EST, TRK | EST), "ct_mark": (blocked, blocked)})
        ]
    # A tracked vif whose outbound traffic is not filtered sends anything (and commits it).
    flows.append(Flow(Table.FROM_VM_ACL, AclPrio.RULE,
                      make_match({REG_CT: (FROM_VM_TRACKED, FROM_VM_TRACKED | EGRESS_FILTERED)}),
                      goto=Table.FROM_VM_COMMIT, kind=KIND_STATE))
    return flows


# --- owner: interface ---------------------------------------------------------------
def interface_flows(view: View, interface_uuid: str) -> list[Flow]:
    row = _vif(view, interface_uuid)
    if row is None:
        return []
    flows = _source_clauses(view, interface_uuid)
    port = view.ofport(interface_uuid)
    if port is None or not is_tracked(view, interface_uuid):
        return flows
    iid = int(row["id"])
    zone = port & CT_ZONE_MASK
    egress = EGRESS_FILTERED if row.get("enable_filtering") else 0

    def vif_flow(table: Table, prio: int, match: Match, actions: tuple = (),
                 goto: Table | None = None) -> Flow:
        return Flow(table, prio, match, actions, goto=goto, kind=KIND_VIF, obj_id=iid)

    flows += [
        vif_flow(Table.FROM_VM_CT, Prio.NORMAL, make_match(in_port=port, eth_type=ETH_IPV4),
                 (SetField(REG_CT, FROM_VM_TRACKED | egress | zone),
                  Ct(zone_src=REG_CT, table=Table.FROM_VM_ACL))),
        vif_flow(Table.TO_VM_CT, Prio.NORMAL, make_match({REG_OUTPORT: iid}, eth_type=ETH_IPV4),
                 (SetField(REG_CT, TO_VM_TRACKED | zone), CtClear(),
                  Ct(zone_src=REG_CT, table=Table.TO_VM_ACL))),
    ]
    conj = []
    for group in view.security_groups_of(interface_uuid):
        if view.row("security_groups", group) is None:
            continue
        conj.append(Conjunction(conj_id(view, group, 0), 1, 2))
        conj += [Conjunction(conj_id(view, group, index), 1, 3)
                 for index in range(1, len(rules_of(view, group)) + 1)]
    if conj:
        flows.append(_clause(make_match({REG_OUTPORT: iid}), conj))
    if row.get("enable_filtering"):
        flows += _static_flows(view, interface_uuid, port, iid, vif_flow)
    return flows


def _source_clauses(view: View, interface_uuid: str) -> list[Flow]:
    """Clause 2 for this member's addresses: of its groups' isolation and of every rule
    naming one of its groups (only groups with a member on this bridge need them)."""
    local = local_groups(view)
    refs = referencing(view)
    conj = []
    for group in view.security_groups_of(interface_uuid):
        if view.row("security_groups", group) is None:
            continue
        if group in local:
            conj.append(Conjunction(conj_id(view, group, 0), 2, 2))
        conj += [Conjunction(conj_id(view, owner, index), 2, 3)
                 for owner, index in refs.get(group, ()) if owner in local]
    if not conj:
        return []
    addresses = sorted({a.ipv4 for a in view.addresses_of(interface_uuid)})
    return [_clause(_ip(ipv4_src=address), conj) for address in addresses]


def _static_flows(view: View, interface_uuid: str, port: int, iid: int, vif_flow) -> list[Flow]:
    """OpenVNet's static filters: ingress entries match the peer as source, egress ones
    as destination, both the destination port; drop entries beat pass entries."""
    to_vm = {REG_OUTPORT: iid}
    from_vm = {"in_port": port}
    out: dict[tuple, Flow] = {}
    filters = [f for f in view.filters_of(interface_uuid) if f.get("mode", "static") == "static"]
    for base, bit, table, commit, peer, arp_peer, passthrough in (
        (to_vm, TO_VM_TRACKED, Table.TO_VM_ACL, Table.TO_VM_COMMIT, "ipv4_src",
         "arp_spa", "ingress_passthrough"),
        (from_vm, FROM_VM_TRACKED, Table.FROM_VM_ACL, Table.FROM_VM_COMMIT,
         "ipv4_dst", "arp_tpa", "egress_passthrough"),
    ):
        tracked = dict(base, **{REG_CT: (bit, bit)})
        if any(f.get(passthrough) for f in filters):
            flow = vif_flow(table, AclPrio.PASSTHROUGH, make_match(tracked), goto=commit)
            out[(flow.table, flow.priority, flow.match)] = flow
        for static in (s for f in filters for s in view.statics_of(f["uuid"])):
            prefix = ipv4_prefix_value(static.get("ipv4_address") or "0.0.0.0",
                                       int(static.get("ipv4_prefix") or 0))
            protocol = static.get("protocol")
            passes = bool(static.get("passthrough"))
            if protocol == "arp":
                if passes:
                    continue  # ARP always passes a filtered vif (OpenVNet's accept_arp)
                matches = [make_match(base, eth_type=ETH_ARP,
                                      **({arp_peer: prefix} if prefix else {}))]
            else:
                l4 = ([{}] if protocol == "all" else
                      _l4(protocol, *(2 * [int(static["port_number"])]
                                      if static.get("port_number") else [None, None])))
                matches = [make_match(tracked, eth_type=ETH_IPV4, **fields,
                                      **({peer: prefix} if prefix else {})) for fields in l4]
            for match in matches:
                flow = (vif_flow(table, AclPrio.STATIC_PASS, match, goto=commit) if passes
                        else vif_flow(table, AclPrio.STATIC_DROP, match))
                out[(flow.table, flow.priority, flow.match)] = flow
    return list(out.values())


# --- owner: security group ----------------------------------------------------------
def group_flows(view: View, group_uuid: str) -> list[Flow]:
    row = view.row("security_groups", group_uuid)
    if row is None or group_uuid not in local_groups(view):
        return []
    gid = int(row["id"])

    def accept(cid: int) -> Flow:
        return Flow(Table.TO_VM_ACL, AclPrio.RULE, make_match(conj_id=cid),
                    goto=Table.TO_VM_COMMIT, kind=KIND_GROUP, obj_id=gid)

    flows = [accept(conj_id(view, group_uuid, 0))]
    for index, rule in enumerate(rules_of(view, group_uuid), start=1):
        cid = conj_id(view, group_uuid, index)
        flows.append(accept(cid))
        if rule.cidr is not None:
            prefix = ipv4_prefix_value(*rule.cidr)
            flows.append(_clause(_ip(ipv4_src=prefix), [Conjunction(cid, 2, 3)]))
        flows += [_clause(_ip(**fields), [Conjunction(cid, 3, 3)])
                  for fields in _l4(rule.protocol, rule.port_min, rule.port_max)]
    return flows


# --- dependencies -------------------------------------------------------------------
def _group_closure(view: View, group: str) -> set[OwnerKey]:
    """Everything a group's rules or local presence shape: the group, its members (clause
    1 and isolation) and the members of the groups its rules name (clause 2)."""
    out: set[OwnerKey] = {("security_group", group)}
    out |= deps.interfaces(view.members_of(group))
    for rule in rules_of(view, group):
        if rule.group is not None:
            out |= deps.interfaces(view.members_of(rule.group))
    return out


def _presence_flips(view: View, interface_uuid: str) -> set[OwnerKey]:
    """If this vif is its groups' only member on this bridge, its arrival or departure
    installs or removes those groups here."""
    if _local_port(view, interface_uuid) is None:
        return set()
    out: set[OwnerKey] = set()
    for group in view.security_groups_of(interface_uuid):
        others = [m for m in view.members_of(group)
                  if m != interface_uuid and _local_port(view, m) is not None]
        if not others:
            out |= _group_closure(view, group)
    return out


def dirty(change: Change, view: View) -> set[OwnerKey]:
    out: set[OwnerKey] = set()
    if change.resource == "interface_security_groups":
        for row in deps.rows(change):
            iface, group = row["interface_uuid"], row["security_group_uuid"]
            out |= {("interface", iface), ("security_group", group)}
            if _local_port(view, iface) is not None and not [
                    m for m in view.members_of(group)
                    if m != iface and _local_port(view, m) is not None]:
                out |= _group_closure(view, group)
    elif change.resource == "security_groups":
        if change.old is not None and change.new is not None \
                and change.old.get("rules") == change.new.get("rules"):
            return set()
        out |= _group_closure(view, change.uuid)
    elif change.resource == "filters":
        out |= deps.interfaces({r["interface_uuid"] for r in deps.rows(change)})
    elif change.resource == "filter_statics":
        filters = [view.row("filters", r["filter_uuid"]) for r in deps.rows(change)]
        out |= deps.interfaces({f["interface_uuid"] for f in filters if f is not None})
    else:
        out |= deps.own_interface(change, view)
        for iface in deps.changed_interfaces(change):
            out |= _presence_flips(view, iface)
    return out


FEATURE = Feature(
    name="acl",
    kinds=frozenset({KIND_VIF, KIND_GROUP, KIND_STATE}),
    owners={"datapath": datapath_flows, "interface": interface_flows,
            "security_group": group_flows},
    dirty=dirty,
)

__all__ = ["FEATURE", "DATAPATH", "is_tracked"]
