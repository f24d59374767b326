"""OpenVNet's router_p2v and wanedge datasets load through the API, one POST per entry
in vnspec's order, every write succeeding (openvnet_datasets.py)."""

from __future__ import annotations

import re
import secrets
from typing import Any

from vnet.ids import PREFIXES

from .openvnet_datasets import ROUTER_P2V, WANEDGE, Dataset, Entry, merged, request
from .support import Api, random_mac

_UUID = re.compile(rf"^({'|'.join(PREFIXES.values())})-[a-z0-9]+$")


class Renamer:
    """Makes one load's rows its own in the shared test database: uuids get a suffix,
    MACs and dpids are replaced by fresh ones (each dataset value by the same one)."""

    def __init__(self) -> None:
        self.suffix = secrets.token_hex(3)
        self.macs: dict[str, str] = {}
        self.dpids: dict[str, str] = {}

    def uuid(self, value: str) -> str:
        return value + self.suffix

    def value(self, key: str, value: Any) -> Any:
        if key == "dpid":
            return self.dpids.setdefault(value, hex(secrets.randbits(48)))
        if key == "mac_address":
            return self.macs.setdefault(value, random_mac())
        if isinstance(value, str) and _UUID.match(value):
            return self.uuid(value)
        return value

    def entry(self, entry: Entry) -> Entry:
        return {key: self.value(key, value) for key, value in entry.items()}


def load(api: Api, dataset: Dataset) -> Renamer:
    names = Renamer()
    for key, entry in merged(dataset):
        path, body = request(key, names.entry(entry))
        response = api.post(path, json=body)
        assert response.status_code == 201, (key, entry, response.text)
    return names


def test_router_p2v_loads(api: Api) -> None:
    names = load(api, ROUTER_P2V)
    route = api.get(f"/routes/{names.uuid('r-p')}").json()
    assert (route["network_uuid"], route["ipv4_network"], route["ipv4_prefix"],
            route["ipv4_gateway"]) == (names.uuid("nw-public1"), "172.16.0.0", 24, None)


def test_wanedge_loads(api: Api) -> None:
    names = load(api, WANEDGE)
    port = api.get(f"/interfaces/{names.uuid('if-glo2vnetgw')}").json()
    assert port["enable_route_translation"] is True
    statics = api.get(f"/translations/{names.uuid('tr-saddr')}/static_address").json()["items"]
    assert [(s["ingress_ipv4_address"], s["egress_ipv4_address"], s["route_link_uuid"])
            for s in statics] == [("10.210.0.104", "10.101.0.11", names.uuid("rl-1")),
                                  ("10.210.0.105", "10.101.0.15", names.uuid("rl-1")),
                                  ("10.210.0.106", "10.101.0.17", names.uuid("rl-1"))]
    # The dataset's own ip_leases (posted last) took over the leases vnmgr made for the
    # static addresses: deleting those no longer releases the addresses.
    assert [s["leased"] for s in statics] == [False] * 3
    leases = api.get("/ip_leases", params={"network_uuid": names.uuid("nw-global"),
                                           "enable_routing": "true"}).json()["items"]
    assert sorted((lease["uuid"], lease["ipv4_address"], lease["mac_lease_uuid"],
                   lease["interface_uuid"]) for lease in leases) == [
        (names.uuid(f"il-nat{n}"), f"10.210.0.{n}", names.uuid("ml-glo2vnetgw"),
         names.uuid("if-glo2vnetgw")) for n in (104, 105, 106)]
