"""A whole wakame-vnet installation in one lab, provisioned over HTTP like a user would.

Used by the e2e tests and the demo: vnmgr and webapi as real processes, one hypervisor
(namespace + private OVS + vna) per host, an underlay segment joining the hosts, and VMs
as namespaces. Every model object is created through the webapi (see `Api.curl_log`).
"""

from __future__ import annotations

import ipaddress
import itertools
import time
from dataclasses import dataclass, field

from lab.hosts import TUNNEL_VM_MTU, Hypervisor, Lab, Underlay, Vm
from lab.services import ServiceHandle, Services
from vnctl.api import Api

UNDERLAY_NETWORK = "nw-underlay"
UNDERLAY_CIDR = ipaddress.IPv4Network("192.168.100.0/24")
OF_PORT = 6633


@dataclass
class Host:
    name: str
    index: int
    hv: Hypervisor
    datapath_uuid: str
    node_id: str
    underlay_ip: str
    host_interface_uuid: str
    vna: ServiceHandle | None = None


@dataclass
class NetworkInfo:
    uuid: str
    cidr: ipaddress.IPv4Network
    gateway: str | None = None
    mode: str = "virtual"


@dataclass
class Cloud:
    lab: Lab
    transport: str = "tunnel"
    database_url: str | None = None
    service_env: dict[str, str] = field(default_factory=dict)
    hosts: dict[str, Host] = field(default_factory=dict)
    networks: dict[str, NetworkInfo] = field(default_factory=dict)
    vms: dict[str, Vm] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.transport not in ("tunnel", "mac2mac"):
            raise ValueError(f"transport must be tunnel or mac2mac, not {self.transport!r}")
        self.services = Services(self.lab, self.database_url, extra_env=self.service_env)
        self.underlay: Underlay | None = None
        self.api: Api | None = None
        self._macs = itertools.count(1)
        self.vnmgr: ServiceHandle | None = None
        self.webapi: ServiceHandle | None = None

    # ------------------------------------------------------------ services
    def start(self, webapi_port: int | None = None) -> Cloud:
        self.vnmgr = self.services.start_vnmgr()
        self.webapi = self.services.start_webapi(webapi_port)
        self.api = Api(self.services.webapi_url)
        self.api.post("networks", uuid=UNDERLAY_NETWORK, display_name="underlay",
                      ipv4_network=str(UNDERLAY_CIDR.network_address),
                      ipv4_prefix=UNDERLAY_CIDR.prefixlen, network_mode="physical")
        return self

    def start_vna(self, host: Host) -> ServiceHandle:
        host.vna = self.services.start_vna(host.hv, host.node_id, of_port=OF_PORT,
                                           transport=self.transport,
                                           VNET_VNA_DATAPATH_TYPE="netdev")
        return host.vna

    # ------------------------------------------------------------ topology
    def add_host(self, name: str) -> Host:
        index = len(self.hosts) + 1
        dpid = 0x0000AAAA00000000 + index
        hv = self.lab.add_hypervisor(name, dpid)
        if self.underlay is None:
            self.underlay = self.lab.add_underlay()
        ip = str(UNDERLAY_CIDR.network_address + index)
        underlay_mac = f"02:fe:00:00:00:{index:02x}"
        if self.transport == "tunnel":
            hv.attach_underlay(self.underlay, f"{ip}/{UNDERLAY_CIDR.prefixlen}", mode="br-phy",
                               mac=underlay_mac)
        else:
            hv.attach_underlay(self.underlay, f"{ip}/{UNDERLAY_CIDR.prefixlen}", mode="br-int",
                               mac=underlay_mac, port_name="ul0")
        datapath_uuid, node_id = f"dp-{name}", f"vna{name}"
        assert self.api is not None, "start() first"
        self.api.post("datapaths", uuid=datapath_uuid, display_name=name,
                      dpid=f"0x{dpid:016x}", node_id=node_id)
        host_if = f"if-{name}ul"
        self.api.post("interfaces", uuid=host_if, mode="host", owner_datapath_uuid=datapath_uuid,
                      port_name=hv.underlay_port, mac_address=underlay_mac,
                      network_uuid=UNDERLAY_NETWORK, ipv4_address=ip)
        host = Host(name, index, hv, datapath_uuid, node_id, ip, host_if)
        self.hosts[name] = host
        for network in self.virtual_networks:
            self._join(host, network)
        self.start_vna(host)
        return host

    def add_network(self, uuid: str, cidr: str, mode: str = "virtual") -> NetworkInfo:
        """A network; virtual ones are joined to every host over the underlay, physical
        ones are left for the caller to attach to a host port (datapath_networks)."""
        net = ipaddress.IPv4Network(cidr)
        assert self.api is not None, "start() first"
        self.api.post("networks", uuid=uuid, ipv4_network=str(net.network_address),
                      ipv4_prefix=net.prefixlen, network_mode=mode)
        info = NetworkInfo(uuid, net, mode=mode)
        self.networks[uuid] = info
        if mode == "virtual":
            for host in self.hosts.values():
                self._join(host, info)
        return info

    @property
    def virtual_networks(self) -> list[NetworkInfo]:
        return [n for n in self.networks.values() if n.mode == "virtual"]

    def _join(self, host: Host, network: NetworkInfo) -> None:
        assert self.api is not None
        mac = next(self._macs)
        self.api.post(f"datapaths/{host.datapath_uuid}/networks/{network.uuid}",
                      broadcast_mac_address=f"02:fd:{host.index:02x}:00:{mac >> 8 & 255:02x}:"
                                            f"{mac & 255:02x}",
                      interface_uuid=host.host_interface_uuid)

    def add_physical_port(self, host: str, segment: Underlay, network: str,
                          port: str = "phys0") -> str:
        """Plug `host` into the physical `segment` (a veth `port` on br-int) and make it
        the host port of the physical `network` there: a `mode=host` interface
        `if-<host><port>` and the datapath_network naming it. Returns the interface uuid."""
        assert self.api is not None
        h = self.hosts[host]
        segment.connect(h.hv.netns, port, peer_name=f"{host}-{port}")
        h.hv.ovs.add_port(h.hv.bridge, port)
        uuid = f"if-{host}{port}"
        self.api.post("interfaces", uuid=uuid, mode="host", owner_datapath_uuid=h.datapath_uuid,
                      port_name=port)
        self.api.post(f"datapaths/{h.datapath_uuid}/networks/{network}",
                      broadcast_mac_address=f"02:fc:{h.index:02x}:00:00:{len(self.networks):02x}",
                      interface_uuid=uuid)
        return uuid

    def add_vm(self, host: str, name: str, network: str, ip: str, mac: str | None = None,
               create: bool = True, dhcp: bool = False, mtu: int | None = None) -> Vm:
        """A VM namespace on `host`; its interface is created through the API first.
        dhcp=True: the model leases `ip`, but eth0 starts without address or route (and
        with MTU `mtu`, default 1280, on the VM's end) for a DHCP client to configure."""
        info = self.networks[network]
        mac = mac or f"10:54:ff:{self.hosts[host].index:02x}:00:{len(self.vms) + 1:02x}"
        if create:
            self.create_interface(host, name, network, ip, mac)
        vm = self.lab.add_vm(self.hosts[host].hv, name, mac,
                             None if dhcp else f"{ip}/{info.cidr.prefixlen}",
                             gateway=info.gateway, iface_id=f"if-{name}",
                             mtu=TUNNEL_VM_MTU if self.transport == "tunnel" else 1500)
        if dhcp:  # only the VM's end: the switch's end keeps what the transport carries
            vm.netns.set_link("eth0", mtu=mtu or 1280)
        self.vms[name] = vm
        return vm

    def create_interface(self, host: str, name: str, network: str, ip: str, mac: str) -> dict:
        assert self.api is not None
        return self.api.post("interfaces", uuid=f"if-{name}", mode="vif",
                             owner_datapath_uuid=self.hosts[host].datapath_uuid, port_name=name,
                             mac_address=mac, network_uuid=network, ipv4_address=ip)

    def add_router(self, route_link: str, ports: dict[str, str]) -> None:
        """A distributed router joining networks: {network uuid: gateway address}.

        Each network gets a simulated interface (the gateway) and a route through it.
        VMs created afterwards use the gateway as their default route.
        """
        assert self.api is not None
        index = len([n for n in self.networks.values() if n.gateway]) + 1
        self.api.post("route_links", uuid=route_link,
                      mac_address=f"02:00:20:00:00:{index:02x}")
        for position, (network, gateway) in enumerate(ports.items(), start=1):
            port = f"if-{route_link.removeprefix('rl-')}p{position}"
            self.api.post("interfaces", uuid=port, mode="simulated", network_uuid=network,
                          mac_address=f"02:00:21:00:{index:02x}:{position:02x}",
                          ipv4_address=gateway, enable_routing="true")
            self.api.post("routes", uuid=f"r-{port.removeprefix('if-')}", interface_uuid=port,
                          network_uuid=network, route_link_uuid=route_link,
                          ipv4_network=str(self.networks[network].cidr.network_address),
                          ipv4_prefix=self.networks[network].cidr.prefixlen)
            self.networks[network].gateway = self.networks[network].gateway or gateway

    def add_route(self, uuid: str, route_link: str, interface: str, network: str,
                  cidr: str) -> None:
        """An extra route of a router: `cidr` reachable through its port `interface`."""
        assert self.api is not None
        net = ipaddress.IPv4Network(cidr)
        self.api.post("routes", uuid=uuid, interface_uuid=interface, network_uuid=network,
                      route_link_uuid=route_link, ipv4_network=str(net.network_address),
                      ipv4_prefix=net.prefixlen)

    def add_two_routed_networks(self, hosts: tuple[str, ...] = ("h1", "h2")) -> None:
        """The common small world: `hosts`, nw-a 10.1.0.0/24 and nw-b 10.2.0.0/24
        joined by router rl-r1 (gateways .1). VMs are the caller's choice."""
        for host in hosts:
            self.add_host(host)
        self.add_network("nw-a", "10.1.0.0/24")
        self.add_network("nw-b", "10.2.0.0/24")
        self.add_router("rl-r1", {"nw-a": "10.1.0.1", "nw-b": "10.2.0.1"})

    # ------------------------------------------------------------ observing
    def wait_ping(self, src: str, dst_ip: str, timeout: float = 10.0) -> float:
        """Seconds until one ping from `src` to `dst_ip` succeeds; raises on timeout."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.vms[src].ping(dst_ip, count=1, wait=0.3).ok:
                return time.monotonic() - started
        raise AssertionError(f"{src} could not reach {dst_ip} within {timeout}s")

    def flows(self, host: str) -> list[str]:
        return self.hosts[host].hv.dump_flows()
