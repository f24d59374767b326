"""Port bindings decided by vnmgr from the agents' reports (vnmgr.handlers.bindings)."""

from __future__ import annotations

from typing import Any

import pytest
import vnmgr_kit as kit
from sqlalchemy.orm import Session

from vnet.errors import ApiError

call = kit.call  # `session` is conftest.py's fixture


def setup_world(session: Session) -> None:
    for n in (1, 2, 3):
        call(session, "create", "datapaths", uuid=f"dp-{n}", dpid=f"0x{n}", node_id=f"n{n}")
    call(session, "create", "networks", uuid="nw-1", ipv4_network="10.0.0.0/24")
    call(session, "create", "interfaces", uuid="if-vm", network_uuid="nw-1")
    call(session, "create", "interfaces", uuid="if-owned", network_uuid="nw-1",
         owner_datapath_uuid="dp-1")


def report(session: Session, dp: str, *ifaces: str, **extra: Any) -> dict:
    ports = [{"interface_uuid": i, "port_name": i.removeprefix("if-"), "port_number": n + 1,
              **extra} for n, i in enumerate(ifaces)]
    return call(session, "report", "active_interfaces", datapath_uuid=dp, ports=ports)


def binding(session: Session, iface: str) -> dict:
    return call(session, "update", "interfaces", iface)["binding"]


def test_unbound_until_a_port_appears_then_bound_where_it_did(session):
    setup_world(session)
    assert binding(session, "if-vm") == {"state": "unbound", "datapath_uuid": None,
                                         "port_name": None, "port_number": None,
                                         "detail": None, "claims": []}
    assert report(session, "dp-2", "if-vm")["bindings"] == {"if-vm": "active"}
    bound = binding(session, "if-vm")
    assert (bound["state"], bound["datapath_uuid"], bound["port_name"]) == ("bound", "dp-2", "vm")


def test_the_first_claim_holds_and_migration_promotes_the_standby(session):
    setup_world(session)
    report(session, "dp-1", "if-vm")
    assert report(session, "dp-2", "if-vm")["bindings"] == {"if-vm": "standby"}
    assert binding(session, "if-vm")["datapath_uuid"] == "dp-1"
    # the port goes away on dp-1: dp-2 takes over
    report(session, "dp-1")
    bound = binding(session, "if-vm")
    assert (bound["state"], bound["datapath_uuid"], bound["claims"]) == ("bound", "dp-2", [])


def test_a_claim_off_the_owner_is_refused_and_reported(session):
    setup_world(session)
    assert report(session, "dp-2", "if-owned")["bindings"] == {"if-owned": "refused"}
    bound = binding(session, "if-owned")
    assert bound["state"] == "unbound"
    assert bound["claims"] == [{"datapath_uuid": "dp-2", "state": "refused", "port_name": "owned",
                                "port_number": 1, "detail": "owner_datapath_uuid is dp-1"}]
    report(session, "dp-1", "if-owned")
    assert binding(session, "if-owned")["datapath_uuid"] == "dp-1"
    # moving the owner re-decides: dp-2's claim becomes the binding, dp-1's is refused
    row = call(session, "update", "interfaces", "if-owned", owner_datapath_uuid="dp-2")
    assert row["binding"]["datapath_uuid"] == "dp-2"
    assert [c["state"] for c in row["binding"]["claims"]] == ["refused"]


def test_deleting_the_datapath_or_the_interface_releases_claims(session):
    setup_world(session)
    report(session, "dp-3", "if-vm")
    report(session, "dp-2", "if-vm")
    call(session, "delete", "datapaths", "dp-3")
    assert binding(session, "if-vm")["datapath_uuid"] == "dp-2"
    row = call(session, "delete", "interfaces", "if-vm")
    assert row["binding"]["state"] == "unbound"


def test_reports_ignore_unknown_and_non_vif_interfaces_and_check_their_input(session):
    setup_world(session)
    call(session, "create", "interfaces", uuid="if-host", mode="host", owner_datapath_uuid="dp-1")
    assert report(session, "dp-1", "if-nope", "if-host")["bindings"] == {}
    for bad in ({"ports": "x"}, {"ports": [{"port_name": "a"}]},
                {"ports": [{"interface_uuid": "if-vm", "port_number": -1}]}):
        with pytest.raises(ApiError) as caught:
            call(session, "report", "active_interfaces", datapath_uuid="dp-1", **bad)
        assert (caught.value.status, caught.value.field) == (422, "ports")
    with pytest.raises(ApiError) as caught:
        call(session, "report", "active_interfaces", datapath_uuid="dp-9", ports=[])
    assert (caught.value.status, caught.value.field) == (404, "datapath_uuid")
