"""Helpers shared by the API tests: the running stack's HTTP and vnmgr handles."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import requests

from lab.services import ServiceHandle, Services
from vnet.messaging import RpcClient


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
        return RpcClient(self.services.rpc_endpoint, 5000).call("snapshot")

    def restart_vnmgr(self) -> None:
        self.vnmgr = self.services.start_vnmgr()


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def random_mac() -> str:
    return "02:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(5))


def one_of_each(api: Api, network: dict[str, Any], rules: str | None = None) -> dict[str, str]:
    """A row of every resource, linked together (resource name -> uuid), so that every
    path of the API has a real row to reach."""
    datapath = api.create("datapaths", uuid=unique("dp"), node_id=unique("n"),
                          dpid=hex(secrets.randbits(48)))
    iface = api.create("interfaces", uuid=unique("if"), network_uuid=network["uuid"],
                       owner_datapath_uuid=datapath["uuid"], mode="simulated",
                       enable_routing=True)
    link = api.create("route_links", uuid=unique("rl"))
    route = api.create("routes", uuid=unique("r"), interface_uuid=iface["uuid"],
                       route_link_uuid=link["uuid"])
    group = api.create("security_groups", uuid=unique("sg"), rules=rules)
    for path in (f"/datapaths/{datapath['uuid']}/networks/{network['uuid']}",
                 f"/datapaths/{datapath['uuid']}/route_links/{link['uuid']}",
                 f"/interfaces/{iface['uuid']}/security_groups/{group['uuid']}"):
        assert api.post(path).status_code == 201, path
    service = api.create("network_services", uuid=unique("ns"), interface_uuid=iface["uuid"],
                         type="dns")
    dns = api.create("dns_services", uuid=unique("dnss"), network_service_uuid=service["uuid"])
    record = api.post(f"/dns_services/{dns['uuid']}/dns_records",
                      json={"uuid": unique("dnsr"), "name": "host", "ipv4_address": "10.0.0.9"})
    assert record.status_code == 201, record.text
    lease = iface["mac_leases"][0]
    return {"datapaths": datapath["uuid"], "networks": network["uuid"],
            "interfaces": iface["uuid"], "mac_leases": lease["uuid"],
            "ip_leases": lease["ip_leases"][0]["uuid"], "route_links": link["uuid"],
            "routes": route["uuid"], "security_groups": group["uuid"],
            "network_services": service["uuid"], "dns_services": dns["uuid"],
            "dns_records": record.json()["uuid"]}
