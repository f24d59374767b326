"""OpenVNet's integration-test datasets base.yml, base_dp.yml, router_p2v.yml and
wanedge.yml (axsh/openvnet integration_test/dataset, master 1407ad79), as vnspec's
dataset.rb merges them: base, then base_dp, then the dataset; each key's lists
concatenated, keys posted in the order they first appear, one POST per entry.

The ERB variables (IT/config/*.yml) take our lab's addresses (LAB); everything else is
verbatim.
"""

from __future__ import annotations

from typing import Any

Entry = dict[str, Any]
Dataset = dict[str, list[Entry]]

# OpenVNet's dataset_options, with our addresses (the e2e physical segment is
# 172.16.0.0/24; the global network keeps OpenVNet's 10.210.0.0/24).
LAB = {
    "physical_port": "eth0",
    "public1": "172.16.0.0", "public2": "172.16.1.0", "prefix": 24,
    "dp1": "172.16.0.10", "dp2": "172.16.0.11", "dp3": "172.16.1.10",
    "dp_wanedge": "172.16.0.12",
    "dhcp1": "172.16.0.3", "dhcp2": "172.16.1.3",
    "address1": "172.16.0.20", "address2": "172.16.0.21", "router": "172.16.0.4",
    "simulated_ip": "10.210.0.2",
    "vm1_ip": "10.210.0.104", "vm5_ip": "10.210.0.105", "vm7_ip": "10.210.0.106",
}


def _host(uuid: str, datapath: str, network: str, mac: str, ip: str,
          port: str = LAB["physical_port"]) -> Entry:
    return {"uuid": uuid, "mode": "host", "port_name": port, "owner_datapath_uuid": datapath,
            "network_uuid": network, "mac_address": mac, "ipv4_address": ip}


def _if(uuid: str, mode: str, network: str, mac: str | None, ip: str | None,
        **extra: Any) -> Entry:
    entry = {"uuid": uuid, "mode": mode, "network_uuid": network, "mac_address": mac,
             "ipv4_address": ip, **extra}
    if mode == "vif":
        entry["port_name"] = uuid
    return {k: v for k, v in entry.items() if v is not None}


def _dpn(datapath: str, network: str, interface: str, mac: str) -> Entry:
    return {"datapath_uuid": datapath, "network_uuid": network, "interface_uuid": interface,
            "mac_address": mac}


def _dprl(datapath: str, link: str, interface: str, mac: str) -> Entry:
    return {"datapath_uuid": datapath, "route_link_uuid": link, "interface_uuid": interface,
            "mac_address": mac}


def _network(uuid: str, name: str, address: str, domain: str, mode: str,
             prefix: int = 24) -> Entry:
    return {"uuid": uuid, "display_name": name, "ipv4_network": address,
            "ipv4_prefix": prefix, "domain_name": domain, "network_mode": mode}


BASE: Dataset = {
    "datapaths": [
        {"uuid": "dp-1", "node_id": "vna1", "display_name": "node1",
         "dpid": "0x0000aaaaaaaaaaaa"},
        {"uuid": "dp-2", "node_id": "vna2", "display_name": "node2",
         "dpid": "0x0000bbbbbbbbbbbb"},
        {"uuid": "dp-3", "node_id": "vna3", "display_name": "node3",
         "dpid": "0x0000cccccccccccc"},
    ],
    "segments": [],
    "networks": [
        _network("nw-public1", "public1", LAB["public1"], "public", "physical", LAB["prefix"]),
        _network("nw-public2", "public2", LAB["public2"], "public", "physical", LAB["prefix"]),
    ],
    "interfaces": [
        _host("if-dp1eth0", "dp-1", "nw-public1", "02:01:00:00:00:01", LAB["dp1"]),
        _host("if-dp2eth0", "dp-2", "nw-public1", "02:01:00:00:00:02", LAB["dp2"]),
        _host("if-dp3eth0", "dp-3", "nw-public2", "02:01:00:00:00:03", LAB["dp3"]),
        _if("if-dhcppub1", "simulated", "nw-public1", "02:00:00:00:01:11", LAB["dhcp1"]),
        _if("if-dhcppub2", "simulated", "nw-public2", "02:00:00:00:01:22", LAB["dhcp2"]),
    ],
    "network_services": [
        {"uuid": "ns-dhcppub1", "interface_uuid": "if-dhcppub1", "mode": "dhcp"},
        {"uuid": "ns-dhcppub2", "interface_uuid": "if-dhcppub2", "mode": "dhcp"},
    ],
}

BASE_DP: Dataset = {
    "datapath_segments": [],
    "datapath_networks": [
        _dpn("dp-1", "nw-public1", "if-dp1eth0", "02:00:01:aa:01:01"),
        _dpn("dp-2", "nw-public1", "if-dp2eth0", "02:00:01:bb:01:01"),
        _dpn("dp-3", "nw-public2", "if-dp3eth0", "02:00:01:cc:01:01"),
    ],
}

ROUTER_P2V: Dataset = {
    "networks": [
        _network("nw-vnet1", "vnet1", "10.101.0.0", "vnet1", "virtual"),
        _network("nw-vnet2", "vnet2", "10.102.0.0", "vnet2", "virtual"),
    ],
    "interfaces": [
        _if("if-v1", "vif", "nw-public1", "02:00:00:00:00:01", LAB["address1"]),
        _if("if-v2", "vif", "nw-vnet2", "02:00:00:00:00:02", "10.102.0.10"),
        _if("if-v3", "vif", "nw-public1", "02:00:00:00:00:03", LAB["address2"]),
        _if("if-v4", "vif", "nw-vnet2", "02:00:00:00:00:04", "10.102.0.11"),
        _if("if-v5", "vif", "nw-vnet1", "02:00:00:00:00:05", "10.101.0.12"),
        _if("if-v6", "vif", "nw-vnet2", "02:00:00:00:00:06", "10.102.0.12"),
        _if("if-dhcp1", "simulated", "nw-vnet1", "02:00:00:00:01:01", "10.101.0.2"),
        _if("if-dhcp2", "simulated", "nw-vnet2", "02:00:00:00:01:02", "10.102.0.2"),
        _if("if-router1", "simulated", "nw-vnet1", "02:00:00:00:02:01", "10.101.0.1",
            enable_routing=True),
        _if("if-router2", "simulated", "nw-vnet2", "02:00:00:00:02:02", "10.102.0.1",
            enable_routing=True),
        _if("if-routerpv", "simulated", "nw-public1", "02:00:00:00:02:11", LAB["router"],
            owner_datapath_uuid="dp-1", enable_routing=True),
    ],
    "network_services": [
        {"uuid": "ns-dhcp1", "interface_uuid": "if-dhcp1", "mode": "dhcp"},
        {"uuid": "ns-dhcp2", "interface_uuid": "if-dhcp2", "mode": "dhcp"},
    ],
    "datapath_networks": [
        _dpn("dp-1", "nw-vnet1", "if-dp1eth0", "02:00:00:aa:00:01"),
        _dpn("dp-1", "nw-vnet2", "if-dp1eth0", "02:00:00:aa:00:02"),
        _dpn("dp-2", "nw-vnet1", "if-dp2eth0", "02:00:00:bb:00:01"),
        _dpn("dp-2", "nw-vnet2", "if-dp2eth0", "02:00:00:bb:00:02"),
        _dpn("dp-3", "nw-vnet1", "if-dp3eth0", "02:00:00:cc:00:01"),
        _dpn("dp-3", "nw-vnet2", "if-dp3eth0", "02:00:00:cc:00:02"),
    ],
    "route_links": [{"uuid": "rl-1", "mac_address": "02:00:33:00:00:01"}],
    "datapath_route_links": [
        _dprl("dp-1", "rl-1", "if-dp1eth0", "02:00:33:aa:00:01"),
        _dprl("dp-2", "rl-1", "if-dp2eth0", "02:00:33:bb:00:01"),
        _dprl("dp-3", "rl-1", "if-dp3eth0", "02:00:33:cc:00:01"),
    ],
    "routes": [
        {"uuid": "r-1", "interface_uuid": "if-router1", "network_uuid": "nw-vnet1",
         "route_link_uuid": "rl-1", "ipv4_network": "10.101.0.0"},
        {"uuid": "r-2", "interface_uuid": "if-router2", "network_uuid": "nw-vnet2",
         "route_link_uuid": "rl-1", "ipv4_network": "10.102.0.0"},
        {"uuid": "r-p", "interface_uuid": "if-routerpv", "network_uuid": "nw-public1",
         "route_link_uuid": "rl-1", "ipv4_network": LAB["public1"]},
    ],
}

WANEDGE: Dataset = {
    "datapaths": [{"uuid": "dp-wanedge", "node_id": "wanedge", "display_name": "wanedge",
                   "dpid": "0x0000eeeeeeeeeeee"}],
    "networks": [
        _network("nw-vnet1", "vnet1", "10.101.0.0", "vnet1", "virtual"),
        _network("nw-global", "global", "10.210.0.0", "global", "physical"),
    ],
    "interfaces": [
        _if("if-v1", "vif", "nw-vnet1", "02:00:00:00:00:01", "10.101.0.11"),
        _if("if-v5", "vif", "nw-vnet1", "02:00:00:00:00:05", "10.101.0.12"),
        _if("if-v7", "vif", "nw-vnet1", "02:00:00:00:00:07", "10.101.0.17"),
        _if("if-dhcp1", "simulated", "nw-vnet1", "02:00:00:00:01:01", "10.101.0.2"),
        _host("if-weth0", "dp-wanedge", "nw-public1", "02:01:00:00:00:04", LAB["dp_wanedge"],
              "eth0"),
        _host("if-weth2", "dp-wanedge", "nw-global", "02:01:00:00:00:05",
              LAB["simulated_ip"], "eth2"),
        _if("if-vnetgw", "simulated", "nw-vnet1", "10:fe:00:00:00:00", "10.101.0.1",
            enable_routing=True),
        _if("if-glo2vnetgw", "simulated", "nw-global", None, None,
            owner_datapath_uuid="dp-wanedge", enable_routing=True,
            enable_route_translation=True),
    ],
    "mac_leases": [{"uuid": "ml-glo2vnetgw", "interface_uuid": "if-glo2vnetgw",
                    "mac_address": "10:fe:00:00:00:01"}],
    "network_services": [{"uuid": "ns-dhcp1", "interface_uuid": "if-dhcp1", "mode": "dhcp"}],
    "datapath_networks": [
        _dpn("dp-1", "nw-vnet1", "if-dp1eth0", "02:00:00:aa:00:01"),
        _dpn("dp-3", "nw-vnet1", "if-dp3eth0", "02:00:00:cc:00:01"),
        _dpn("dp-wanedge", "nw-vnet1", "if-weth0", "02:00:00:ee:00:01"),
        _dpn("dp-wanedge", "nw-public1", "if-weth0", "02:00:00:ee:01:01"),
        _dpn("dp-wanedge", "nw-global", "if-weth2", "02:00:00:ee:02:01"),
    ],
    "route_links": [{"uuid": "rl-1", "mac_address": "02:00:41:00:00:01"}],
    "datapath_route_links": [
        _dprl("dp-1", "rl-1", "if-dp1eth0", "02:00:41:aa:00:01"),
        _dprl("dp-3", "rl-1", "if-dp3eth0", "02:00:41:bb:00:01"),
        _dprl("dp-wanedge", "rl-1", "if-weth0", "02:00:41:cc:00:01"),
    ],
    "routes": [
        {"uuid": "r-vnet1", "interface_uuid": "if-vnetgw", "network_uuid": "nw-vnet1",
         "route_link_uuid": "rl-1", "ipv4_network": "10.101.0.0", "ipv4_prefix": 24},
        {"uuid": "r-glo2vnet", "interface_uuid": "if-glo2vnetgw", "network_uuid": "nw-global",
         "route_link_uuid": "rl-1", "ipv4_network": "0.0.0.0", "ipv4_prefix": 0},
    ],
    "translations": [{"uuid": "tr-saddr", "interface_uuid": "if-glo2vnetgw",
                      "mode": "static_address", "passthrough": False}],
    "translation_static_addresses": [
        {"translation_uuid": "tr-saddr", "ingress_ipv4_address": LAB["vm1_ip"],
         "egress_ipv4_address": "10.101.0.11", "route_link_uuid": "rl-1"},
        {"translation_uuid": "tr-saddr", "ingress_ipv4_address": LAB["vm5_ip"],
         "egress_ipv4_address": "10.101.0.15", "route_link_uuid": "rl-1"},
        {"translation_uuid": "tr-saddr", "ingress_ipv4_address": LAB["vm7_ip"],
         "egress_ipv4_address": "10.101.0.17", "route_link_uuid": "rl-1"},
    ],
    "ip_leases": [
        {"uuid": f"il-nat{n}", "mac_lease_uuid": "ml-glo2vnetgw", "ipv4_address": LAB[vm],
         "network_uuid": "nw-global", "enable_routing": True}
        for n, vm in ((104, "vm1_ip"), (105, "vm5_ip"), (106, "vm7_ip"))
    ],
}


def merged(dataset: Dataset) -> list[tuple[str, Entry]]:
    """(key, entry) in vnspec's order: base, base_dp, then the dataset, merged key by key
    (each key's lists concatenated, keys in the order they first appear)."""
    keys: dict[str, list[Entry]] = {}
    for part in (BASE, BASE_DP, dataset):
        for key, entries in part.items():
            keys.setdefault(key, []).extend(entries)
    return [(key, entry) for key, entries in keys.items() for entry in entries]


# vnspec's URL mapping (dataset.rb `setup`): these keys name path segments.
PATHS = {
    "datapath_networks": ("datapaths/{datapath_uuid}/networks/{network_uuid}",
                          ("datapath_uuid", "network_uuid")),
    "datapath_route_links": ("datapaths/{datapath_uuid}/route_links/{route_link_uuid}",
                             ("datapath_uuid", "route_link_uuid")),
    "translation_static_addresses": ("translations/{translation_uuid}/static_address",
                                     ("translation_uuid",)),
}


def request(key: str, entry: Entry) -> tuple[str, Entry]:
    """The POST's path (under /api/1.0) and body of one dataset entry."""
    if key not in PATHS:
        return f"/{key}", dict(entry)
    template, in_path = PATHS[key]
    return "/" + template.format(**entry), {k: v for k, v in entry.items() if k not in in_path}
