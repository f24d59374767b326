"""Describe a `VnetPlan` to wakame-vnet through its HTTP API, as an operator would.

The underlay is a physical network; each hypervisor's underlay port is its host
interface there, and every virtual network is joined to every datapath through that
interface (datapath_networks) with a per-(datapath, network) MAC: the addresses MAC2MAC
puts on the wire between hypervisors.
"""

from __future__ import annotations

import ipaddress

from vnet_topo import VNET_UNDERLAY_CIDR, VnetPlan

from vnctl.api import Api

UNDERLAY_NETWORK = "nw-underlay"
ROUTE_LINK = "rl-mn"


def _cidr_fields(cidr: str) -> dict[str, str | int]:
    net = ipaddress.IPv4Network(cidr)
    return {"ipv4_network": str(net.network_address), "ipv4_prefix": net.prefixlen}


def provision(api: Api, plan: VnetPlan) -> None:
    api.post("networks", uuid=UNDERLAY_NETWORK, display_name="underlay",
             network_mode="physical", **_cidr_fields(VNET_UNDERLAY_CIDR))
    for net in plan.networks:
        api.post("networks", uuid=net.uuid, display_name=net.uuid, network_mode="virtual",
                 **_cidr_fields(net.cidr))
    for hv in plan.hypervisors:
        datapath = f"dp-{hv.name}"
        api.post("datapaths", uuid=datapath, display_name=hv.name, dpid=f"0x{hv.dpid}",
                 node_id=hv.node_id)
        host_if = f"if-{hv.name}ul"
        api.post("interfaces", uuid=host_if, mode="host", owner_datapath_uuid=datapath,
                 port_name=hv.underlay_port, mac_address=hv.underlay_mac,
                 network_uuid=UNDERLAY_NETWORK, ipv4_address=hv.underlay_ip)
        for position, net in enumerate(plan.networks, start=1):
            api.post(f"datapaths/{datapath}/networks/{net.uuid}",
                     broadcast_mac_address=f"02:fd:{hv.index:02x}:00:00:{position:02x}",
                     interface_uuid=host_if)
    for vm in plan.vms:
        api.post("interfaces", uuid=f"if-{vm.name}", mode="vif", display_name=vm.name,
                 owner_datapath_uuid=f"dp-{vm.hypervisor}", port_name=vm.port,
                 mac_address=vm.mac, network_uuid=vm.network, ipv4_address=vm.ip)
    if plan.router:
        _router(api, plan)


def _router(api: Api, plan: VnetPlan) -> None:
    """One distributed router: a gateway (simulated interface) per network, and a
    route to each network through its gateway, all on one route link."""
    api.post("route_links", uuid=ROUTE_LINK, mac_address="02:00:20:00:00:01")
    for position, net in enumerate(plan.networks, start=1):
        port = f"if-rtr{position}"
        api.post("interfaces", uuid=port, mode="simulated", network_uuid=net.uuid,
                 mac_address=f"02:00:21:00:00:{position:02x}", ipv4_address=net.gateway,
                 enable_routing="true")
        api.post("routes", uuid=f"r-rtr{position}", interface_uuid=port,
                 network_uuid=net.uuid, route_link_uuid=ROUTE_LINK, **_cidr_fields(net.cidr))
