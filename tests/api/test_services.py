"""Network services through the API (OpenVNet's network_services, dns_services and
dns_records), on SQLite and MariaDB: what is accepted, what is refused naming the
field, and that a refusal changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from .support import Api, random_mac, unique


def server(api: Api, network: dict[str, Any]) -> dict[str, Any]:
    """A simulated interface with an address allocated on the network."""
    return api.create("interfaces", uuid=unique("if"), mode="simulated",
                      network_uuid=network["uuid"], mac_address=random_mac())


def refused(api: Api, method: str, path: str, status: int, field: str, **body: Any) -> None:
    before = api.snapshot()
    response = api.request(method, path, data=body)
    assert (response.status_code, response.json()["field"]) == (status, field), response.text
    assert api.snapshot() == before


def test_dhcp_and_dns_services_with_records(api: Api, network: dict[str, Any]) -> None:
    dhcp_if, dns_if = server(api, network), server(api, network)
    dhcp = api.create("network_services", uuid=unique("ns"), interface_uuid=dhcp_if["uuid"],
                      type="dhcp")
    assert (dhcp["type"], dhcp["interface_uuid"]) == ("dhcp", dhcp_if["uuid"])
    # OpenVNet's datasets also write the type as `mode`
    dns = api.create("network_services", uuid=unique("ns"), interface_uuid=dns_if["uuid"],
                     mode="dns")
    assert dns["type"] == "dns"
    service = api.create("dns_services", uuid=unique("dnss"), network_service_uuid=dns["uuid"],
                         public_dns=" 192.0.2.53 , 198.51.100.53")
    assert service["public_dns"] == "192.0.2.53,198.51.100.53"
    path = f"/dns_services/{service['uuid']}/dns_records"
    record = api.post(path, data={"uuid": unique("dnsr"), "name": "VM3",
                                  "ipv4_address": "10.9.9.3"})
    assert record.status_code == 201, record.text
    assert (record.json()["name"], record.json()["ttl"]) == ("vm3", 60)
    listed = api.get(path).json()
    assert [r["uuid"] for r in listed["items"]] == [record.json()["uuid"]]
    assert api.get(f"{path}/{record.json()['uuid']}").json()["ipv4_address"] == "10.9.9.3"
    # refusals naming the field, changing nothing
    refused(api, "POST", "/network_services", 409, "type", interface_uuid=dns_if["uuid"],
            type="dhcp")  # one dhcp service per network
    refused(api, "POST", path, 422, "name", name="not a name", ipv4_address="10.9.9.4")
    refused(api, "POST", path, 409, "name", name="vm3", ipv4_address="10.9.9.3")
    refused(api, "POST", path, 422, "ttl", name="vm4", ipv4_address="10.9.9.4", ttl="-1")
    refused(api, "POST", "/dns_services", 422, "network_service_uuid",
            network_service_uuid=dhcp["uuid"])
    refused(api, "POST", "/dns_services", 409, "network_service_uuid",
            network_service_uuid=dns["uuid"])
    refused(api, "POST", "/dns_services", 422, "public_dns",
            network_service_uuid=dns["uuid"], public_dns="8.8.8.8,nope")
    refused(api, "DELETE", f"/interfaces/{dhcp_if['uuid']}", 409, None)
    refused(api, "PUT", f"/network_services/{dhcp['uuid']}", 422, "type", type="dns")
    # PUT names and upstreams; deleting the service takes its dns service and records
    assert api.put(f"/network_services/{dhcp['uuid']}",
                   data={"display_name": "dhcp"}).json()["display_name"] == "dhcp"
    assert api.put(f"/dns_services/{service['uuid']}",
                   data={"public_dns": ""}).json()["public_dns"] is None
    assert api.delete(f"{path}/{record.json()['uuid']}").status_code == 200
    assert api.delete(f"/network_services/{dns['uuid']}").status_code == 200
    assert api.get(f"/dns_services/{service['uuid']}").status_code == 404


@pytest.mark.parametrize("body,field", [
    ({"type": "ntp"}, "type"),
    ({"type": "dhcp", "interface_uuid": "if-nosuch"}, "interface_uuid"),
])
def test_network_service_input_is_checked(api: Api, network: dict[str, Any],
                                          body: dict[str, str], field: str) -> None:
    iface = server(api, network)
    status = 404 if body.get("interface_uuid") else 422
    refused(api, "POST", "/network_services", status, field,
            **{"interface_uuid": iface["uuid"], **body})


def test_a_vif_or_an_interface_without_address_serves_nothing(api: Api,
                                                             network: dict[str, Any]) -> None:
    vif = api.create("interfaces", uuid=unique("if"), mode="vif", network_uuid=network["uuid"])
    bare = api.create("interfaces", uuid=unique("if"), mode="simulated")
    for iface in (vif, bare):
        refused(api, "POST", "/network_services", 422, "interface_uuid",
                interface_uuid=iface["uuid"], type="dns")


def test_a_network_mtu_is_set_checked_and_cleared(api: Api) -> None:
    net = api.create("networks", uuid=unique("nw"), ipv4_network="10.253.0.0", mtu="1400")
    assert net["mtu"] == 1400
    refused(api, "PUT", f"/networks/{net['uuid']}", 422, "mtu", mtu="100")
    assert api.put(f"/networks/{net['uuid']}", data={"mtu": ""}).json()["mtu"] is None


def test_a_service_interface_keeps_its_mode_and_its_one_address(api: Api,
                                                               network: dict[str, Any]) -> None:
    iface = server(api, network)
    api.create("network_services", uuid=unique("ns"), interface_uuid=iface["uuid"], type="dns")
    lease = iface["mac_leases"][0]
    refused(api, "PUT", f"/interfaces/{iface['uuid']}", 409, "mode", mode="vif")
    refused(api, "DELETE", f"/ip_leases/{lease['ip_leases'][0]['uuid']}", 409, "uuid")
    refused(api, "DELETE", f"/mac_leases/{lease['uuid']}", 409, "uuid")
    other = api.create("networks", uuid=unique("nw"), ipv4_network="10.254.0.0")
    # a second address would put the service on that network too (two dhcp servers)
    refused(api, "POST", "/ip_leases", 409, "interface_uuid", interface_uuid=iface["uuid"],
            network_uuid=other["uuid"])


def test_a_record_name_may_end_in_one_dot_only(api: Api, network: dict[str, Any]) -> None:
    service = api.create("network_services", uuid=unique("ns"),
                         interface_uuid=server(api, network)["uuid"], type="dns")
    dns = api.create("dns_services", uuid=unique("dnss"), network_service_uuid=service["uuid"])
    path = f"/dns_services/{dns['uuid']}/dns_records"
    absolute = api.post(path, data={"name": "vm9.", "ipv4_address": "10.9.9.9"})
    assert absolute.status_code == 201 and absolute.json()["name"] == "vm9"
    refused(api, "POST", path, 422, "name", name="vm8..", ipv4_address="10.9.9.8")
