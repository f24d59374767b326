"""Translations and their static addresses through the API (OpenVNet's translations.rb):
a router port on a physical network, 1:1 static addresses under
/translations/<uuid>/static_address whose global addresses vnmgr leases to the port,
routes' ipv4_gateway and the router-port rules around them."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import pytest

from .support import Api, refused, unique

TRANSLATION_FIELDS = {"id", "uuid", "interface_uuid", "mode", "passthrough", "created_at",
                      "updated_at"}
STATIC_FIELDS = {"id", "uuid", "translation_uuid", "route_link_uuid", "ingress_ipv4_address",
                 "egress_ipv4_address", "ingress_port_number", "egress_port_number", "leased",
                 "created_at", "updated_at"}


@dataclass
class Port:
    """A router port on its own physical network x.y.z.0/24 (port address .4), owned
    by a datapath, next to a private network."""

    subnet: str  # "172.20.7"
    physical: str
    private: dict[str, Any]
    datapath: str
    interface: dict[str, Any]
    link: str

    def global_address(self, host: int) -> str:
        return f"{self.subnet}.{host}"

    def statics(self, translation: str) -> str:
        return f"/translations/{translation}/static_address"


@pytest.fixture
def port(api: Api, network: dict[str, Any]) -> Port:
    # Global addresses are unique across translations: a subnet of this test's own.
    subnet = f"172.{secrets.randbelow(16) + 16}.{secrets.randbelow(256)}"
    physical = api.create("networks", uuid=unique("nw"), ipv4_network=f"{subnet}.0",
                          network_mode="physical")["uuid"]
    datapath = api.create("datapaths", uuid=unique("dp"), node_id=unique("n"),
                          dpid=hex(secrets.randbits(48)))["uuid"]
    interface = api.create("interfaces", uuid=unique("if"), mode="simulated",
                           enable_routing=True, owner_datapath_uuid=datapath,
                           network_uuid=physical, ipv4_address=f"{subnet}.4")
    link = api.create("route_links", uuid=unique("rl"))["uuid"]
    return Port(subnet, physical, network, datapath, interface, link)


def route_through(api: Api, port: Port) -> str:
    """Make the port a port of `port.link` (a static address may name only its router);
    the route's uuid."""
    return api.create("routes", interface_uuid=port.interface["uuid"],
                      network_uuid=port.physical, route_link_uuid=port.link,
                      ipv4_network=f"{port.subnet}.0")["uuid"]


def translation(api: Api, port: Port, mode: str = "static_address",
                **fields: Any) -> dict[str, Any]:
    return api.create("translations", uuid=unique("tr"), interface_uuid=port.interface["uuid"],
                      mode=mode, **fields)


def private(port: Port, host: int) -> str:
    return port.private["ipv4_network"].rsplit(".", 1)[0] + f".{host}"


def add_static(api: Api, port: Port, tr: str, ingress: int, egress: int,
               **body: Any) -> dict[str, Any]:
    response = api.post(port.statics(tr), data={
        "ingress_ipv4_address": port.global_address(ingress),
        "egress_ipv4_address": private(port, egress), **body})
    assert response.status_code == 201, response.text
    return response.json()


def global_leases(api: Api, port: Port) -> dict[str, dict[str, Any]]:
    """The port's leases on its physical network, by address."""
    items = api.get("/ip_leases", params={"network_uuid": port.physical,
                                          "interface_uuid": port.interface["uuid"]}).json()
    return {lease["ipv4_address"]: lease for lease in items["items"]}


def test_translation_rows(api: Api, port: Port) -> None:
    row = translation(api, port)
    assert set(row) == TRANSLATION_FIELDS
    assert (row["interface_uuid"], row["mode"], row["passthrough"]) == (
        port.interface["uuid"], "static_address", False)
    assert api.get(f"/translations/{row['uuid']}").json() == row
    listed = api.get("/translations", params={"interface_uuid": port.interface["uuid"]})
    assert [r["uuid"] for r in listed.json()["items"]] == [row["uuid"]]
    snat = translation(api, port, "snat", passthrough="true")
    assert (snat["mode"], snat["passthrough"]) == ("snat", True)
    response = api.put(f"/translations/{row['uuid']}", data={"passthrough": "true"})
    assert response.status_code == 405
    refused(api, "POST", "/translations", 409, "interface_uuid",
            interface_uuid=port.interface["uuid"], mode="snat")


@pytest.mark.parametrize("interface,body,status,field", [
    (None, {"mode": "snat"}, 422, "interface_uuid"),
    ("if-nosuch", {"mode": "snat"}, 404, "interface_uuid"),
    ("PORT", {}, 422, "mode"),
    ("PORT", {"mode": "dynamic"}, 422, "mode"),
    ("PORT", {"mode": "vnet_edge"}, 422, "mode"),
    ("PORT", {"mode": "snat", "passthrough": "maybe"}, 422, "passthrough"),
    ("PORT", {"mode": "snat", "uuid": "tsa-wrongprefix"}, 422, "uuid"),
    ("PORT", {"mode": "snat", "ingress_ipv4_address": "1.2.3.4"}, 422,
     "ingress_ipv4_address"),
    ("VIF", {"mode": "snat"}, 422, "interface_uuid"),
    ("NOROUTING", {"mode": "snat"}, 422, "interface_uuid"),
    ("VIRTUAL", {"mode": "snat"}, 422, "interface_uuid"),
    ("NOOWNER", {"mode": "snat"}, 422, "interface_uuid"),
])
def test_bad_translations_are_refused(api: Api, port: Port, interface: str | None,
                                      body: dict[str, str], status: int, field: str) -> None:
    ports = {
        "PORT": port.interface["uuid"],
        "VIF": {"mode": "vif", "network_uuid": port.physical},
        "NOROUTING": {"mode": "simulated", "network_uuid": port.physical,
                      "owner_datapath_uuid": port.datapath},
        "VIRTUAL": {"mode": "simulated", "enable_routing": True,
                    "network_uuid": port.private["uuid"], "owner_datapath_uuid": port.datapath},
        "NOOWNER": {"mode": "simulated", "enable_routing": True,
                    "network_uuid": port.physical},
    }
    named = ports.get(interface or "", interface)
    if isinstance(named, dict):
        named = api.create("interfaces", uuid=unique("if"), **named)["uuid"]
    if named is not None:
        body = {**body, "interface_uuid": named}
    refused(api, "POST", "/translations", status, field, **body)


def test_static_addresses_lease_their_global_address(api: Api, port: Port) -> None:
    route_through(api, port)
    tr = translation(api, port)["uuid"]
    first = add_static(api, port, tr, 100, 10, route_link_uuid=port.link)
    assert set(first) == STATIC_FIELDS
    assert (first["translation_uuid"], first["route_link_uuid"],
            first["ingress_ipv4_address"], first["egress_ipv4_address"],
            first["ingress_port_number"], first["egress_port_number"], first["leased"]) == (
        tr, port.link, port.global_address(100), private(port, 10), None, None, True)
    lease = global_leases(api, port)[port.global_address(100)]
    assert (lease["enable_routing"], lease["mac_lease_uuid"]) == (
        True, port.interface["mac_leases"][0]["uuid"])
    # The same global address with ports: the port has it already.
    web = add_static(api, port, tr, 100, 11, ingress_port_number="80",
                     egress_port_number="8080")
    assert (web["ingress_port_number"], web["egress_port_number"], web["leased"]) == (
        80, 8080, False)
    # The port's own address: not leased again either.
    own = add_static(api, port, tr, 4, 12, ingress_port_number="22", egress_port_number="22")
    assert own["leased"] is False
    assert api.get(port.statics(tr)).json()["items"] == [first, web, own]
    assert api.get(f"{port.statics(tr)}/{web['uuid']}").json() == web
    # Deleting the entry that leased it hands the lease to the other one.
    assert api.delete(f"{port.statics(tr)}/{first['uuid']}").json() == first
    assert port.global_address(100) in global_leases(api, port)
    assert api.get(f"{port.statics(tr)}/{web['uuid']}").json()["leased"] is True
    assert api.delete(f"{port.statics(tr)}/{web['uuid']}").status_code == 200
    assert set(global_leases(api, port)) == {port.global_address(4)}
    assert api.delete(f"{port.statics(tr)}/{own['uuid']}").status_code == 200
    assert set(global_leases(api, port)) == {port.global_address(4)}


def test_a_global_address_of_another_interface_is_a_conflict(api: Api, port: Port) -> None:
    tr = translation(api, port)["uuid"]
    api.create("interfaces", uuid=unique("if"), network_uuid=port.physical,
               ipv4_address=port.global_address(50))
    refused(api, "POST", port.statics(tr), 409, "ingress_ipv4_address",
            ingress_ipv4_address=port.global_address(50), egress_ipv4_address=private(port, 9))


def test_duplicates_are_conflicts(api: Api, port: Port) -> None:
    tr, other = translation(api, port)["uuid"], translation(api, port)["uuid"]
    add_static(api, port, tr, 101, 20)
    add_static(api, port, tr, 102, 21, ingress_port_number="80", egress_port_number="80")
    path = port.statics(other)
    refused(api, "POST", path, 409, "ingress_ipv4_address",
            ingress_ipv4_address=port.global_address(101), egress_ipv4_address=private(port, 30))
    refused(api, "POST", path, 409, "ingress_ipv4_address",
            ingress_ipv4_address=port.global_address(102), egress_ipv4_address=private(port, 31),
            ingress_port_number="80", egress_port_number="81")
    refused(api, "POST", port.statics(tr), 409, "egress_ipv4_address",
            ingress_ipv4_address=port.global_address(103), egress_ipv4_address=private(port, 20))
    # ...in another translation of the same port too: the port would translate that
    # private address two ways.
    refused(api, "POST", path, 409, "egress_ipv4_address",
            ingress_ipv4_address=port.global_address(104), egress_ipv4_address=private(port, 20))
    # Another port of the same address is fine.
    add_static(api, port, tr, 102, 21, ingress_port_number="443", egress_port_number="443")


@pytest.mark.parametrize("body,status,field", [
    ({"egress_ipv4_address": "PRIVATE"}, 422, "ingress_ipv4_address"),
    ({"ingress_ipv4_address": "GLOBAL"}, 422, "egress_ipv4_address"),
    ({"ingress_ipv4_address": "10.0.0.300", "egress_ipv4_address": "PRIVATE"}, 422,
     "ingress_ipv4_address"),
    ({"ingress_ipv4_address": "192.0.2.1", "egress_ipv4_address": "PRIVATE"}, 422,
     "ingress_ipv4_address"),
    ({"ingress_ipv4_address": "NET.0", "egress_ipv4_address": "PRIVATE"}, 422,
     "ingress_ipv4_address"),
    ({"ingress_ipv4_address": "NET.255", "egress_ipv4_address": "PRIVATE"}, 422,
     "ingress_ipv4_address"),
    ({"ingress_ipv4_address": "GLOBAL", "egress_ipv4_address": "NET.77"}, 422,
     "egress_ipv4_address"),
    ({"ingress_ipv4_address": "GLOBAL", "egress_ipv4_address": "PRIVATE",
      "ingress_port_number": "80"}, 422, "egress_port_number"),
    ({"ingress_ipv4_address": "GLOBAL", "egress_ipv4_address": "PRIVATE",
      "egress_port_number": "80"}, 422, "ingress_port_number"),
    ({"ingress_ipv4_address": "GLOBAL", "egress_ipv4_address": "PRIVATE",
      "ingress_port_number": "0", "egress_port_number": "80"}, 422, "ingress_port_number"),
    ({"ingress_ipv4_address": "GLOBAL", "egress_ipv4_address": "PRIVATE",
      "ingress_port_number": "80", "egress_port_number": "65536"}, 422, "egress_port_number"),
    ({"ingress_ipv4_address": "GLOBAL", "egress_ipv4_address": "PRIVATE",
      "route_link_uuid": "rl-nosuch"}, 404, "route_link_uuid"),
    ({"ingress_ipv4_address": "GLOBAL", "egress_ipv4_address": "PRIVATE",
      "ingress_network_uuid": "PRIVATENET"}, 422, "ingress_network_uuid"),
    ({"ingress_ipv4_address": "GLOBAL", "egress_ipv4_address": "PRIVATE",
      "egress_network_uuid": "PHYSICALNET"}, 422, "egress_network_uuid"),
    ({"ingress_ipv4_address": "GLOBAL", "egress_ipv4_address": "PRIVATE",
      "egress_network_uuid": "nw-nosuch"}, 404, "egress_network_uuid"),
    ({"ingress_ipv4_address": "GLOBAL", "egress_ipv4_address": "PRIVATE",
      "leased": "true"}, 422, "leased"),
    ({"ingress_ipv4_address": "GLOBAL", "egress_ipv4_address": "PRIVATE",
      "translation_uuid": "tr-other"}, 422, "translation_uuid"),
])
def test_bad_static_addresses_are_refused(api: Api, port: Port, body: dict[str, str],
                                          status: int, field: str) -> None:
    tr = translation(api, port)["uuid"]
    values = {"PRIVATE": private(port, 10), "GLOBAL": port.global_address(60),
              "PRIVATENET": port.private["uuid"], "PHYSICALNET": port.physical}
    body = {k: values.get(v, v.replace("NET.", port.subnet + ".")) for k, v in body.items()}
    refused(api, "POST", port.statics(tr), status, field, **body)


def test_static_addresses_need_a_static_address_translation(api: Api, port: Port) -> None:
    snat = translation(api, port, "snat")["uuid"]
    body = {"ingress_ipv4_address": port.global_address(70),
            "egress_ipv4_address": private(port, 10)}
    refused(api, "POST", port.statics(snat), 422, "translation_uuid", **body)
    refused(api, "POST", port.statics("tr-nosuch"), 404, "translation_uuid", **body)
    assert api.get(port.statics("tr-nosuch")).status_code == 404


def test_static_addresses_are_deleted_by_uuid_or_by_their_parameters(api: Api,
                                                                     port: Port) -> None:
    route_through(api, port)
    tr, other = translation(api, port)["uuid"], translation(api, port)["uuid"]
    plain = add_static(api, port, tr, 110, 40, route_link_uuid=port.link)
    ported = add_static(api, port, tr, 111, 41, ingress_port_number="80",
                        egress_port_number="8080")
    path = port.statics(tr)
    g110, g111 = port.global_address(110), port.global_address(111)
    another_link = api.create("route_links", uuid=unique("rl"))["uuid"]
    # no static address matches: a 404, nothing deleted (OpenVNet: UnknownResource)
    for body in ({"ingress_ipv4_address": g110, "egress_ipv4_address": private(port, 41)},
                 {"ingress_ipv4_address": g111, "egress_ipv4_address": private(port, 41)},
                 {"ingress_ipv4_address": g111, "egress_ipv4_address": private(port, 41),
                  "ingress_port_number": "80", "egress_port_number": "80"}):
        refused(api, "DELETE", path, 404, None, **body)
    refused(api, "DELETE", path, 404, "route_link_uuid", ingress_ipv4_address=g110,
            egress_ipv4_address=private(port, 40), route_link_uuid="rl-nosuch")
    # a route link that is not the port's router names no static address of it
    refused(api, "DELETE", path, 422, "route_link_uuid", ingress_ipv4_address=g110,
            egress_ipv4_address=private(port, 40), route_link_uuid=another_link)
    refused(api, "DELETE", path, 422, "egress_port_number", ingress_ipv4_address=g111,
            egress_ipv4_address=private(port, 41), ingress_port_number="80")
    refused(api, "DELETE", f"{port.statics(other)}/{plain['uuid']}", 404, "uuid")
    refused(api, "DELETE", f"{path}/{plain['uuid']}", 422, "ingress_ipv4_address",
            ingress_ipv4_address=g110)
    deleted = api.delete(path, data={"ingress_ipv4_address": g111,
                                     "egress_ipv4_address": private(port, 41),
                                     "ingress_port_number": "80", "egress_port_number": "8080"})
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == ported
    deleted = api.delete(path, data={"ingress_ipv4_address": g110,
                                     "egress_ipv4_address": private(port, 40),
                                     "route_link_uuid": port.link})
    assert deleted.json() == plain
    assert api.get(path).json()["items"] == []
    assert set(global_leases(api, port)) == {port.global_address(4)}


def test_deletes_take_static_addresses_and_their_leases_along(api: Api, port: Port) -> None:
    route = route_through(api, port)
    tr = translation(api, port)["uuid"]
    static = add_static(api, port, tr, 120, 50, route_link_uuid=port.link)
    lease = global_leases(api, port)[port.global_address(120)]
    # The lease is the static address's: deleted with it, not on its own.
    refused(api, "DELETE", f"/ip_leases/{lease['uuid']}", 409, "uuid")
    refused(api, "DELETE", f"/mac_leases/{lease['mac_lease_uuid']}", 409, "uuid")
    refused(api, "DELETE", f"/route_links/{port.link}", 409, None)
    assert api.delete(f"/translations/{tr}").status_code == 200
    assert api.get(port.statics(tr)).status_code == 404
    assert static["uuid"] not in api.snapshot()["model"]["translation_static_addresses"]
    assert set(global_leases(api, port)) == {port.global_address(4)}
    again = translation(api, port)["uuid"]
    add_static(api, port, again, 121, 50)
    assert api.delete(f"/routes/{route}").status_code == 200
    assert api.delete(f"/interfaces/{port.interface['uuid']}").status_code == 200
    model = api.snapshot()["model"]
    assert again not in model["translations"]
    assert not [lease for lease in model["ip_leases"].values()
                if lease["network_uuid"] == port.physical]


def test_an_explicit_lease_takes_over_the_address(api: Api, port: Port) -> None:
    """wanedge.yml posts its ip_leases after its static addresses."""
    tr = translation(api, port)["uuid"]
    static = add_static(api, port, tr, 130, 60)
    mac = api.create("mac_leases", uuid=unique("ml"), interface_uuid=port.interface["uuid"])
    lease = api.create("ip_leases", uuid=unique("il"), mac_lease_uuid=mac["uuid"],
                       network_uuid=port.physical, ipv4_address=port.global_address(130),
                       enable_routing="true")
    assert (lease["interface_uuid"], lease["enable_routing"]) == (
        port.interface["uuid"], True)
    assert api.get(f"{port.statics(tr)}/{static['uuid']}").json()["leased"] is False
    # still the static address's global address: not deletable while it translates it
    refused(api, "DELETE", f"/ip_leases/{lease['uuid']}", 409, "uuid")
    assert api.delete(f"{port.statics(tr)}/{static['uuid']}").status_code == 200
    assert api.get(f"/ip_leases/{lease['uuid']}").status_code == 200
    refused(api, "POST", "/ip_leases", 422, "interface_uuid", network_uuid=port.physical)


def test_router_port_rules(api: Api, port: Port) -> None:
    """A translation's port stays a router port with an owner; enable_route_translation
    only on a router port."""
    tr = translation(api, port)["uuid"]
    path = f"/interfaces/{port.interface['uuid']}"
    refused(api, "PUT", path, 409, "enable_routing", enable_routing="false")
    refused(api, "PUT", path, 409, "owner_datapath_uuid", owner_datapath_uuid="")
    row = api.put(path, data={"enable_route_translation": "true"}).json()
    assert row["enable_route_translation"] is True
    assert api.delete(f"/translations/{tr}").status_code == 200
    refused(api, "PUT", path, 409, "enable_routing", enable_routing="false")
    refused(api, "PUT", path, 409, "mode", mode="vif")
    assert api.put(path, data={"owner_datapath_uuid": ""}).status_code == 200
    vif = api.create("interfaces", uuid=unique("if"))
    refused(api, "PUT", f"/interfaces/{vif['uuid']}", 422, "enable_route_translation",
            enable_route_translation="true")
    refused(api, "POST", "/interfaces", 422, "enable_route_translation", mode="simulated",
            enable_route_translation="true")


def test_routes_on_a_physical_network_need_an_owner(api: Api, port: Port) -> None:
    lonely = api.create("interfaces", uuid=unique("if"), mode="simulated", enable_routing=True,
                        network_uuid=port.physical)
    body = {"route_link_uuid": port.link, "network_uuid": port.physical}
    error = refused(api, "POST", "/routes", 422, "interface_uuid",
                    interface_uuid=lonely["uuid"], **body)
    assert "owner_datapath_uuid" in error["message"]
    route = api.create("routes", uuid=unique("r"), interface_uuid=port.interface["uuid"],
                       ipv4_network="0.0.0.0", ipv4_prefix=0, **body)
    path = f"/interfaces/{port.interface['uuid']}"
    refused(api, "PUT", path, 409, "owner_datapath_uuid", owner_datapath_uuid="")
    other = api.create("datapaths", uuid=unique("dp"), node_id=unique("n"),
                       dpid=hex(secrets.randbits(48)))
    assert api.put(path, data={"owner_datapath_uuid": other["uuid"]}).status_code == 200
    assert api.delete(f"/routes/{route['uuid']}").status_code == 200


def test_route_gateways(api: Api, port: Port) -> None:
    body = {"interface_uuid": port.interface["uuid"], "route_link_uuid": port.link,
            "network_uuid": port.physical, "ipv4_network": "0.0.0.0", "ipv4_prefix": "0"}
    for gateway in ("10.0.0.1", f"{port.subnet}.0", f"{port.subnet}.255",
                    f"{port.subnet}.4", "gateway"):
        refused(api, "POST", "/routes", 422, "ipv4_gateway", ipv4_gateway=gateway, **body)
    route = api.create("routes", uuid=unique("r"), ipv4_gateway=f"{port.subnet}.1", **body)
    assert route["ipv4_gateway"] == f"{port.subnet}.1"
    path = f"/routes/{route['uuid']}"
    refused(api, "PUT", path, 422, "ipv4_gateway", ipv4_gateway="192.0.2.1")
    assert api.put(path, data={"ipv4_gateway": f"{port.subnet}.254"}).json()[
        "ipv4_gateway"] == f"{port.subnet}.254"
    cleared = api.put(path, data={"ipv4_gateway": ""}).json()
    assert cleared["ipv4_gateway"] is None
    assert api.get(path).json() == cleared
    assert api.delete(path).status_code == 200


def test_snat_keeps_its_address_and_next_hops_are_for_physical_networks(api: Api,
                                                                       port: Port) -> None:
    translation(api, port, mode="snat")
    own = global_leases(api, port)[port.global_address(4)]
    # the address SNAT uses: the port's last own address on the physical network
    refused(api, "DELETE", f"/ip_leases/{own['uuid']}", 409, "uuid")
    # a virtual network's addresses are all in the model: no next hop there
    link = api.create("route_links", uuid=unique("rl"))["uuid"]
    gateway = private(port, 1)
    inner = api.create("interfaces", uuid=unique("if"), mode="simulated", enable_routing=True,
                       network_uuid=port.private["uuid"], ipv4_address=gateway)
    refused(api, "POST", "/routes", 422, "ipv4_gateway", interface_uuid=inner["uuid"],
            network_uuid=port.private["uuid"], route_link_uuid=link, ipv4_network="10.60.0.0",
            ipv4_prefix="16", ipv4_gateway=private(port, 12))
