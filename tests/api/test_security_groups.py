"""Security groups through the API (OpenVNet's security_groups.rb): rules checked on
every write, groups referenced by rules kept, membership from both ends, vifs only."""

from __future__ import annotations

from typing import Any

import pytest

from .support import Api, refused, unique


def vif(api: Api, network: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return api.create("interfaces", uuid=unique("if"), network_uuid=network["uuid"], **fields)


@pytest.mark.parametrize("rules,quoted", [
    ("garbage rule here", "line 1: 'garbage rule here'"),
    ("tcp:22:0.0.0.0/0\nudp:0:10.0.0.0/8", "line 2: 'udp:0:10.0.0.0/8'"),
    ("icmp:-1:0.0.0.0/0\n# comment\ntcp:22:sg-nosuch", "line 3: 'tcp:22:sg-nosuch'"),
])
def test_bad_rules_are_refused_naming_the_line(api: Api, rules: str, quoted: str) -> None:
    error = refused(api, "POST", "/security_groups", 422, "rules", uuid=unique("sg"),
                    rules=rules)
    assert quoted in error["message"]
    group = api.create("security_groups", uuid=unique("sg"), rules="tcp:80:0.0.0.0/0")
    path = f"/security_groups/{group['uuid']}"
    error = refused(api, "PUT", path, 422, "rules", rules=rules)
    assert quoted in error["message"]
    assert api.get(path).json() == group


def test_put_replaces_the_rules_and_an_empty_value_clears_them(api: Api) -> None:
    group = api.create("security_groups", uuid=unique("sg"), rules="tcp:22:10.0.0.1")
    path = f"/security_groups/{group['uuid']}"
    assert api.put(path, data={"rules": "udp:53:10.0.0.0/24"}).json()["rules"] == \
        "udp:53:10.0.0.0/24"
    assert api.get(path).json()["rules"] == "udp:53:10.0.0.0/24"
    assert api.put(path, data={"rules": ""}).json()["rules"] is None


def test_a_group_may_reference_itself_and_existing_groups(api: Api) -> None:
    own = unique("sg")
    group = api.create("security_groups", uuid=own, rules=f"tcp:22:{own}")
    other = api.create("security_groups", uuid=unique("sg"), rules=f"tcp:22:{own}, icmp:-1:{own}")
    assert (group["rules"], other["rules"]) == (f"tcp:22:{own}", f"tcp:22:{own}, icmp:-1:{own}")
    assert api.put(f"/security_groups/{own}",
                   data={"rules": f"udp:1-100:{other['uuid']}"}).status_code == 200


def test_a_referenced_group_is_not_deleted(api: Api) -> None:
    referenced = api.create("security_groups", uuid=unique("sg"))
    referencing = api.create("security_groups", uuid=unique("sg"),
                             rules=f"tcp:22:{referenced['uuid']}")
    error = refused(api, "DELETE", f"/security_groups/{referenced['uuid']}", 409, "uuid")
    assert referencing["uuid"] in error["message"]
    # its own reference does not keep a group alive
    assert api.put(f"/security_groups/{referencing['uuid']}",
                   data={"rules": f"tcp:22:{referencing['uuid']}"}).status_code == 200
    assert api.delete(f"/security_groups/{referenced['uuid']}").status_code == 200
    assert api.delete(f"/security_groups/{referencing['uuid']}").status_code == 200


def test_membership_from_both_ends(api: Api, network: dict[str, Any]) -> None:
    iface, group = vif(api, network), api.create("security_groups", uuid=unique("sg"))
    by_interface = f"/interfaces/{iface['uuid']}/security_groups/{group['uuid']}"
    by_group = f"/security_groups/{group['uuid']}/interfaces/{iface['uuid']}"
    added = api.post(by_group)
    assert added.status_code == 201, added.text
    row = added.json()
    assert (row["interface_uuid"], row["security_group_uuid"]) == (iface["uuid"], group["uuid"])
    assert api.get(by_interface).json() == row == api.get(by_group).json()
    members = api.get(f"/security_groups/{group['uuid']}/interfaces").json()["items"]
    assert [m["uuid"] for m in members] == [iface["uuid"]]
    refused(api, "POST", by_interface, 409, "security_group_uuid")
    refused(api, "POST", by_group, 409, "security_group_uuid")
    refused(api, "POST", by_group, 422, "colour", colour="red")
    assert api.delete(by_interface).json() == row
    refused(api, "DELETE", by_group, 404, "security_group_uuid")
    assert api.post(by_interface).status_code == 201
    assert api.delete(by_group).status_code == 200
    assert api.get(by_interface).status_code == 404


@pytest.mark.parametrize("mode", ["simulated", "host"])
def test_only_a_vif_joins_a_group(api: Api, network: dict[str, Any], mode: str) -> None:
    iface = api.create("interfaces", uuid=unique("if"), mode=mode)
    group = api.create("security_groups", uuid=unique("sg"))
    refused(api, "POST", f"/interfaces/{iface['uuid']}/security_groups/{group['uuid']}", 422,
            "interface_uuid")
    refused(api, "POST", f"/security_groups/{group['uuid']}/interfaces/{iface['uuid']}", 422,
            "interface_uuid")


def test_a_member_stays_a_vif_and_takes_its_memberships_along(api: Api,
                                                             network: dict[str, Any]) -> None:
    iface, group = vif(api, network), api.create("security_groups", uuid=unique("sg"))
    path = f"/security_groups/{group['uuid']}/interfaces/{iface['uuid']}"
    assert api.post(path).status_code == 201
    refused(api, "PUT", f"/interfaces/{iface['uuid']}", 409, "mode", mode="simulated")
    assert api.delete(f"/interfaces/{iface['uuid']}").status_code == 200
    assert api.get(f"/security_groups/{group['uuid']}/interfaces").json()["items"] == []


def test_interface_filtering_flags(api: Api, network: dict[str, Any]) -> None:
    plain = vif(api, network)
    assert (plain["ingress_filtering_enabled"], plain["enable_filtering"]) == (False, False)
    flagged = vif(api, network, ingress_filtering_enabled="true", enable_filtering="1")
    assert (flagged["ingress_filtering_enabled"], flagged["enable_filtering"]) == (True, True)
    path = f"/interfaces/{plain['uuid']}"
    assert api.put(path, data={"enable_filtering": "yes"}).json()["enable_filtering"] is True
    assert api.get(path).json()["enable_filtering"] is True
    refused(api, "PUT", path, 422, "ingress_filtering_enabled", ingress_filtering_enabled="on")
    refused(api, "PUT", path, 422, "enable_filtering", enable_filtering="")
    listed = api.get("/interfaces", params={"enable_filtering": "true"}).json()["items"]
    assert {flagged["uuid"], plain["uuid"]} <= {row["uuid"] for row in listed}


def test_openvnet_secg_datasets(api: Api) -> None:
    """secg.yml and secg_reference.yml (integration_test/dataset in axsh/openvnet), as
    vnspec loads them: interfaces with ingress_filtering_enabled, groups, memberships."""
    net = api.create("networks", uuid=unique("nw"), ipv4_network="10.101.0.0",
                     ipv4_prefix=24, network_mode="virtual")
    ifs = [api.create("interfaces", uuid=unique("if"), port_name=f"if-v{i}",
                      network_uuid=net["uuid"], ingress_filtering_enabled=True,
                      ipv4_address=f"10.101.0.{10 + i}") for i in range(5)]
    reffee, reffer = unique("sg"), unique("sg")
    groups = [
        {"uuid": unique("sg"), "display_name": "accept all icmp", "rules": "icmp:-1:0.0.0.0/0"},
        {"uuid": unique("sg"), "display_name": "accept a bunch of traffic from vm3",
         "rules": "tcp:22:10.101.0.12\nicmp:-1:10.101.0.12\nudp:1344:10.101.0.12\n"},
        {"uuid": unique("sg"), "display_name": "accept udp", "rules": "udp:1678:10.101.0.0/24"},
        {"uuid": reffee, "display_name": "referenced group 1"},
        {"uuid": reffer, "display_name": "reference group 1", "rules": f"tcp:22:{reffee}"},
    ]
    for group, iface in zip(groups, ifs, strict=True):
        api.create("security_groups", **group)
        response = api.post(f"/interfaces/{iface['uuid']}/security_groups/{group['uuid']}")
        assert response.status_code == 201, response.text
