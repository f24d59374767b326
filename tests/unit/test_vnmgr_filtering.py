"""vnmgr's security-group and filter handlers without processes: rules and their
references, vif-only members, static entries' derived columns and look-up."""

from __future__ import annotations

from sqlalchemy.orm import Session
from vnmgr_kit import call, refused

from vnmgr.handlers.security_groups import referenced_groups


def test_rules_name_existing_groups_or_themselves(session: Session) -> None:
    call(session, "create", "security_groups", uuid="sg-a", rules="tcp:22:sg-a")
    error = refused(session, "create", "security_groups", uuid="sg-b",
                    rules="icmp:-1:0.0.0.0/0\ntcp:22:sg-c")
    assert (error.status, error.field) == (422, "rules")
    assert "line 2: 'tcp:22:sg-c'" in error.message
    call(session, "create", "security_groups", uuid="sg-b", rules="tcp:22:sg-a")
    error = refused(session, "delete", "security_groups", "sg-a")
    assert (error.status, error.field) == (409, "uuid") and "sg-b" in error.message
    call(session, "update", "security_groups", "sg-b", rules="")
    call(session, "delete", "security_groups", "sg-a")


def test_referenced_groups_skip_rules_that_do_not_parse() -> None:
    assert referenced_groups("tcp:22:sg-x, junk:sg-y\n# tcp:1:sg-z\nudp:53:sg-w") == {
        "sg-x", "sg-w"}


def test_only_a_vif_joins_and_has_filters(session: Session) -> None:
    call(session, "create", "interfaces", uuid="if-r", mode="simulated")
    call(session, "create", "security_groups", uuid="sg-a")
    error = refused(session, "create", "interface_security_groups", interface_uuid="if-r",
                    security_group_uuid="sg-a")
    assert (error.status, error.field) == (422, "interface_uuid")
    error = refused(session, "create", "filters", interface_uuid="if-r", mode="static")
    assert (error.status, error.field) == (422, "interface_uuid")


def test_static_entries_derive_their_columns(session: Session) -> None:
    call(session, "create", "interfaces", uuid="if-v")
    call(session, "create", "filters", uuid="fil-a", interface_uuid="if-v", mode="static")
    row = call(session, "create", "filter_statics", filter_uuid="fil-a", protocol="udp",
               ipv4_address="192.168.7.9/20", passthrough="n")
    assert (row["ipv4_address"], row["ipv4_prefix"], row["port_number"],
            row["passthrough"]) == ("192.168.0.0", 20, 0, False)
    row = call(session, "create", "filter_statics", filter_uuid="fil-a", protocol="all",
               passthrough="y")
    assert (row["ipv4_address"], row["ipv4_prefix"], row["port_number"]) == ("0.0.0.0", 0,
                                                                             None)
    error = refused(session, "create", "filter_statics", filter_uuid="fil-a", protocol="all",
                    ipv4_address="0.0.0.0/0", passthrough="n")
    assert (error.status, error.field) == (409, "protocol")
    deleted = call(session, "delete", "filter_statics", filter_uuid="fil-a", protocol="all",
                   passthrough="y")
    assert deleted["uuid"] == row["uuid"]
    call(session, "delete", "interfaces", "if-v")
    assert refused(session, "delete", "filters", "fil-a").status == 404
