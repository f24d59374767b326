"""Helpers shared by the API tests: the running stack's HTTP and vnmgr handles."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import requests

from lab.services import ServiceHandle, Services
from vnet.registry import NESTED

# URL segments naming nested rows other than by their resource name (/filters/<f>/static).
_SEGMENTS = {segment: nested.resource for nested in NESTED for segment in nested.segments}


def resource_of(segment: str) -> str:
    """The resource whose rows a URL segment lists: `static` -> filter_statics."""
    return _SEGMENTS.get(segment, segment)


@dataclass
class Api:
    """One running stack: HTTP helpers plus direct access to vnmgr."""

    services: Services
    vnmgr: ServiceHandle
    database_url: str
    http: requests.Session

    @property
    def url(self) -> str:
        return self.services.webapi_url + "/api/1.0"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.http.request(method, self.url + path, timeout=30, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def create(self, resource: str, **fields: Any) -> dict[str, Any]:
        response = self.post(f"/{resource}", json=fields)
        assert response.status_code == 201, response.text
        return response.json()

    def snapshot(self) -> dict[str, Any]:
        """vnmgr's whole model and sequence number: equal snapshots mean nothing changed."""
        return self.services.rpc(5000).call("snapshot")

    def restart_vnmgr(self) -> None:
        self.vnmgr = self.services.start_vnmgr()


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def random_mac() -> str:
    return "02:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(5))


def one_of_each(api: Api, network: dict[str, Any], rules: str | None = None) -> dict[str, str]:
    """A row of every resource, linked together (resource name -> uuid), so that every
    path of the API has a real row to reach. `interfaces` is a vif in the security group
    with a filter; the router port of the route and the network service is another
    interface, and the translation's a third, on a physical network."""
    datapath = api.create("datapaths", uuid=unique("dp"), node_id=unique("n"),
                          dpid=hex(secrets.randbits(48)))
    router = api.create("interfaces", uuid=unique("if"), network_uuid=network["uuid"],
                        owner_datapath_uuid=datapath["uuid"], mode="simulated",
                        enable_routing=True)
    vif = api.create("interfaces", uuid=unique("if"), network_uuid=network["uuid"],
                     owner_datapath_uuid=datapath["uuid"], mode="vif",
                     ingress_filtering_enabled=True, enable_filtering=True)
    link = api.create("route_links", uuid=unique("rl"))
    route = api.create("routes", uuid=unique("r"), interface_uuid=router["uuid"],
                       route_link_uuid=link["uuid"])
    group = api.create("security_groups", uuid=unique("sg"), rules=rules)
    for path in (f"/datapaths/{datapath['uuid']}/networks/{network['uuid']}",
                 f"/datapaths/{datapath['uuid']}/route_links/{link['uuid']}",
                 f"/interfaces/{vif['uuid']}/security_groups/{group['uuid']}"):
        assert api.post(path).status_code == 201, path
    service = api.create("network_services", uuid=unique("ns"), interface_uuid=router["uuid"],
                         type="dns")
    dns = api.create("dns_services", uuid=unique("dnss"), network_service_uuid=service["uuid"])
    record = api.post(f"/dns_services/{dns['uuid']}/dns_records",
                      json={"uuid": unique("dnsr"), "name": "host", "ipv4_address": "10.0.0.9"})
    assert record.status_code == 201, record.text
    filter_ = api.create("filters", uuid=unique("fil"), interface_uuid=vif["uuid"],
                         mode="static")
    static = api.post(f"/filters/{filter_['uuid']}/static",
                      json={"uuid": unique("fs"), "protocol": "tcp", "port_number": 22,
                            "passthrough": True})
    assert static.status_code == 201, static.text
    translation, address = _translated_port(api, datapath["uuid"], link["uuid"], network)
    lease = router["mac_leases"][0]  # in use by the service: its deletes are refused
    return {"datapaths": datapath["uuid"], "networks": network["uuid"],
            "interfaces": vif["uuid"], "mac_leases": lease["uuid"],
            "ip_leases": lease["ip_leases"][0]["uuid"], "route_links": link["uuid"],
            "routes": route["uuid"], "security_groups": group["uuid"],
            "network_services": service["uuid"], "dns_services": dns["uuid"],
            "dns_records": record.json()["uuid"], "filters": filter_["uuid"],
            "filter_statics": static.json()["uuid"], "translations": translation,
            "translation_static_addresses": address}


def _translated_port(api: Api, datapath: str, link: str,
                     network: dict[str, Any]) -> tuple[str, str]:
    """A router port on a new physical network, with a static_address translation and
    one static address to a host of `network`: (translation uuid, static uuid). The
    physical subnet is random, as a global address is unique across translations."""
    subnet = f"198.18.{secrets.randbelow(256)}"
    physical = api.create("networks", uuid=unique("nw"), ipv4_network=f"{subnet}.0",
                          ipv4_prefix=24, network_mode="physical")
    port = api.create("interfaces", uuid=unique("if"), network_uuid=physical["uuid"],
                      owner_datapath_uuid=datapath, mode="simulated", enable_routing=True,
                      enable_route_translation=True)
    # a port of the router `link` (the route link a static address names must be its)
    api.create("routes", uuid=unique("r"), interface_uuid=port["uuid"],
               network_uuid=physical["uuid"], route_link_uuid=link,
               ipv4_network=f"{subnet}.0")
    translation = api.create("translations", uuid=unique("tr"), interface_uuid=port["uuid"],
                             mode="static_address")
    private = network["ipv4_network"].rsplit(".", 1)[0] + ".50"
    static = api.post(f"/translations/{translation['uuid']}/static_address",
                      json={"uuid": unique("tsa"), "route_link_uuid": link,
                            "ingress_ipv4_address": f"{subnet}.{secrets.randbelow(200) + 20}",
                            "egress_ipv4_address": private})
    assert static.status_code == 201, static.text
    return translation["uuid"], static.json()["uuid"]


def refused(api: Api, method: str, path: str, status: int, field: str | None,
            **body: Any) -> dict[str, Any]:
    """Sends body as form fields; asserts the status and the field the error names, and
    that vnmgr's model (every row, and the sequence number) did not change. Returns the
    error body."""
    before = api.snapshot()
    response = api.request(method, path, data=body)
    assert (response.status_code, response.json()["field"]) == (status, field), response.text
    assert api.snapshot() == before
    return response.json()
