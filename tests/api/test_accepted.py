"""What the API accepts and applies for real (issue 9 §2): OpenVNet's names and forms,
clearing, default routes, the smallest networks, and no event for a write that changes
nothing. The refusals are cases of test_errors."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from .support import Api, random_mac, unique


def test_openvnet_names_are_the_same_fields(api: Api, network: dict[str, Any]) -> None:
    dp = api.create("datapaths", uuid=unique("dp"), node_id=unique("n"),
                    dpid=hex(secrets.randbits(48)))
    mac = random_mac()
    # OpenVNet 0.9+ (and its datasets) name the datapath network's MAC `mac_address`.
    bad = api.post(f"/datapaths/{dp['uuid']}/networks/{network['uuid']}",
                   data={"mac_address": "zz"})
    assert (bad.status_code, bad.json()["field"]) == (422, "mac_address")  # as sent
    joined = api.post(f"/datapaths/{dp['uuid']}/networks/{network['uuid']}",
                      data={"mac_address": mac})
    assert joined.status_code == 201, joined.text
    assert joined.json()["broadcast_mac_address"] == mac
    # vnctl's `network add --mode` is network_mode.
    physical = api.create("networks", uuid=unique("nw"), ipv4_network="10.251.0.0",
                          mode="physical")
    assert physical["network_mode"] == "physical"


@pytest.mark.parametrize("dpid", ["0000aaaa0000beef", "0x0000AAAA0000BEEF",
                                  "00:00:aa:aa:00:00:be:ef"])
def test_dpids_as_ovs_prints_them_are_stored_in_one_form(api: Api, dpid: str) -> None:
    row = api.create("datapaths", uuid=unique("dp"), node_id=unique("n"), dpid=dpid)
    assert row["dpid"] == "0x0000aaaa0000beef"
    found = api.get("/datapaths", params={"dpid": "0000aaaa0000beef"}).json()
    assert [r["uuid"] for r in found["items"]] == [row["uuid"]]
    assert api.delete(f"/datapaths/{row['uuid']}").status_code == 200


def test_an_empty_value_clears_on_put_and_is_absent_on_post(api: Api) -> None:
    created = api.post("/networks", data={"uuid": unique("nw"), "ipv4_network": "10.252.0.0",
                                          "display_name": "", "domain_name": "example"})
    assert created.status_code == 201 and created.json()["display_name"] is None
    path = f"/networks/{created.json()['uuid']}"
    named = api.put(path, data={"display_name": "named"}).json()
    assert named["display_name"] == "named"
    cleared = api.put(path, data={"display_name": ""})
    assert cleared.status_code == 200 and cleared.json()["display_name"] is None
    assert api.put(path, json={"domain_name": None}).json()["domain_name"] is None
    assert api.get(path).json()["domain_name"] is None


def test_a_put_that_changes_nothing_publishes_nothing(api: Api) -> None:
    link = api.create("route_links", uuid=unique("rl"), display_name="same")
    before = api.snapshot()["seq"]
    again = api.put(f"/route_links/{link['uuid']}", data={"display_name": "same"})
    assert again.status_code == 200 and again.json() == link
    assert api.put(f"/route_links/{link['uuid']}", data={}).status_code == 200
    assert api.snapshot()["seq"] == before
    assert api.put(f"/route_links/{link['uuid']}", data={"display_name": "other"}).ok
    assert api.snapshot()["seq"] == before + 1


def test_post_reads_the_query_string_as_openvnet_did(api: Api) -> None:
    response = api.post("/route_links", params={"uuid": unique("rl"), "display_name": "q"},
                        data={"display_name": "body wins"})
    assert response.status_code == 201, response.text
    assert response.json()["display_name"] == "body wins"


def test_routes_take_a_default_route_and_one_destination_per_link(api: Api) -> None:
    octet = secrets.randbelow(200) + 10
    nets = [api.create("networks", uuid=unique("nw"), ipv4_network=f"10.{octet}.{i}.0/24")
            for i in (1, 2)]
    ports = [api.create("interfaces", uuid=unique("if"), mode="simulated", enable_routing=True,
                        network_uuid=net["uuid"]) for net in nets]
    link = api.create("route_links", uuid=unique("rl"))
    for port in ports:
        api.create("routes", interface_uuid=port["uuid"], route_link_uuid=link["uuid"])
    default = api.create("routes", interface_uuid=ports[1]["uuid"],
                         route_link_uuid=link["uuid"], ipv4_network="0.0.0.0", ipv4_prefix=0)
    assert (default["ipv4_network"], default["ipv4_prefix"]) == ("0.0.0.0", 0)
    # A second network with the first one's subnet on the same route link.
    twin = api.create("networks", uuid=unique("nw"), ipv4_network=f"10.{octet}.1.0/24")
    twin_port = api.create("interfaces", uuid=unique("if"), mode="simulated",
                           enable_routing=True, network_uuid=twin["uuid"])
    before = api.snapshot()
    refused = api.post("/routes", data={"interface_uuid": twin_port["uuid"],
                                        "route_link_uuid": link["uuid"]})
    assert (refused.status_code, refused.json()["field"]) == (409, "ipv4_network")
    assert api.snapshot() == before


@pytest.mark.parametrize(("prefix", "expected"), [
    (31, ["0", "1"]),  # RFC 3021: both addresses of a /31 are hosts
    (32, ["0"]),  # a /32's one address is its host
])
def test_the_smallest_networks_hold_interfaces(api: Api, prefix: int,
                                               expected: list[str]) -> None:
    base = f"10.253.{secrets.randbelow(250)}.{secrets.randbelow(32) * 8}"
    net = api.create("networks", uuid=unique("nw"), ipv4_network=f"{base}/{prefix}")
    got = [api.create("interfaces", uuid=unique("if"), network_uuid=net["uuid"])
           ["ipv4_address"].rsplit(".", 1)[1] for _ in expected]
    first = int(base.rsplit(".", 1)[1])
    assert got == [str(first + int(last)) for last in expected]
    full = api.post("/interfaces", data={"network_uuid": net["uuid"]})
    assert (full.status_code, full.json()["field"]) == (409, "ipv4_address")
