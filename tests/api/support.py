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
