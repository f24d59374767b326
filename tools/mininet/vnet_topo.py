"""Mininet topologies of wakame-vnet hypervisors, VMs and a MAC2MAC underlay.

    mn --custom tools/mininet/vnet_topo.py --topo vnet,3,2 --controller none ...

Every hypervisor is one OVS bridge (`VnetSwitch`, userspace datapath, OpenFlow 1.3,
fixed dpid) run by its own vna. Mininet hosts are the VMs. The hypervisors do not link
to each other: each has one underlay port into `ul0`, a standalone OVS bridge in NORMAL
mode that no vna controls. MAC2MAC needs every datapath to reach every other one in a
single L2 hop, and a vna never forwards underlay frames meant for another datapath, so
a line s1-s2-s3 would cut s1 off from s3; a shared segment (one "physical switch")
does not.

The plan (`vnet_plan`) is plain data that `run.py` also uses to provision the model, so
names, MACs and addresses in the topology and in the model cannot drift apart.

This file is exec'd by `mn --custom` with no `__file__` and no package: it must stay
self-contained, and every top-level name lands in mn's globals, hence the `vnet_`
prefixes.
"""

from typing import NamedTuple

from mininet.node import OVSSwitch
from mininet.topo import Topo

VNET_BASE_OF_PORT = 6633
VNET_UNDERLAY_SWITCH = "ul0"
VNET_UNDERLAY_CIDR = "192.168.100.0/24"
VNET_NETWORKS = (("nw-a", "10.1.0.0/24", "10.1.0.1"), ("nw-b", "10.2.0.0/24", "10.2.0.1"))


class VnetHypervisor(NamedTuple):
    name: str  # the OVS bridge, e.g. s1
    index: int
    dpid: str  # 16 hex digits, as mininet and other_config:datapath-id want it
    of_port: int  # its vna's OpenFlow listener
    node_id: str
    underlay_port: str
    underlay_mac: str
    underlay_ip: str


class VnetVm(NamedTuple):
    name: str  # the mininet host
    hypervisor: str
    port: str  # the switch-side veth = the model's port_name
    mac: str
    network: str
    ip: str
    prefix: int
    gateway: str | None


class VnetNetwork(NamedTuple):
    uuid: str
    cidr: str
    gateway: str | None


class VnetPlan(NamedTuple):
    hypervisors: list[VnetHypervisor]
    vms: list[VnetVm]
    networks: list[VnetNetwork]
    router: bool


def vnet_plan(hypervisors: int = 3, vms_per_hypervisor: int = 2, networks: int = 2) -> VnetPlan:
    """`vms_per_hypervisor` VMs on each hypervisor, spread round-robin over `networks`
    networks (at most 2), so with 2+ VMs per host every host has a VM in each network:
    pingall then covers same-host, cross-host and routed cross-host paths. With more
    than one network a router joins them (gateways .1)."""
    if not 1 <= networks <= len(VNET_NETWORKS):
        raise ValueError(f"networks must be 1..{len(VNET_NETWORKS)}")
    # Addresses are .<10*hypervisor + slot>: keep them unique and inside one octet.
    if not 1 <= hypervisors <= 24 or not 1 <= vms_per_hypervisor <= 10:
        raise ValueError("hypervisors must be 1..24, vms_per_hypervisor 1..10")
    router = networks > 1
    nets = [VnetNetwork(u, c, g if router else None) for u, c, g in VNET_NETWORKS[:networks]]
    ul_base = VNET_UNDERLAY_CIDR.rsplit(".", 1)[0]
    hvs = [
        VnetHypervisor(
            name=f"s{i}", index=i, dpid=f"0000aaaa{i:08x}", of_port=VNET_BASE_OF_PORT + i - 1,
            node_id=f"vnas{i}", underlay_port=f"s{i}-ul", underlay_mac=f"02:fe:00:00:00:{i:02x}",
            underlay_ip=f"{ul_base}.{i}",
        )
        for i in range(1, hypervisors + 1)
    ]
    vms = []
    for hv in hvs:
        for slot in range(vms_per_hypervisor):
            number = len(vms) + 1
            net = nets[slot % len(nets)]
            base, prefix = net.cidr.split("/")
            vms.append(VnetVm(
                name=f"h{number}", hypervisor=hv.name, port=f"{hv.name}-h{number}",
                mac=f"10:54:ff:{hv.index:02x}:00:{number:02x}", network=net.uuid,
                # .10 + hypervisor*10 + slot: addresses say where a VM lives.
                ip=f"{base.rsplit('.', 1)[0]}.{10 * hv.index + slot}", prefix=int(prefix),
                gateway=net.gateway,
            ))
    return VnetPlan(hvs, vms, nets, router)


class VnetSwitch(OVSSwitch):
    """A hypervisor bridge: userspace datapath, OpenFlow 1.3, fail_mode secure.

    Mininet hands every switch every controller; this one keeps only the controller on
    its own vna's port (`of_port`). With none matching (`--controller none`) it starts
    without one and its vna sets the target itself through OVSDB."""

    def __init__(self, name: str, of_port: int = VNET_BASE_OF_PORT, **params):
        params.setdefault("datapath", "user")
        params.setdefault("protocols", "OpenFlow13")
        super().__init__(name, **params)
        self.of_port = of_port

    def start(self, controllers: list) -> None:
        super().start([c for c in controllers if getattr(c, "port", None) == self.of_port])


class VnetUnderlaySwitch(OVSSwitch):
    """The underlay segment: a plain learning switch (standalone, no controller), the
    stand-in for the physical network between hypervisors."""

    def __init__(self, name: str, **params):
        params.update(failMode="standalone", datapath="user")
        super().__init__(name, **params)

    def start(self, controllers: list) -> None:
        super().start([])


class VnetTopo(Topo):
    """Hypervisor switches s1..sN on underlay switch ul0; VMs h1..hM (see vnet_plan)."""

    def build(self, hypervisors: int = 3, vms_per_hypervisor: int = 2,
              networks: int = 2) -> None:
        plan = vnet_plan(int(hypervisors), int(vms_per_hypervisor), int(networks))
        underlay = self.addSwitch(VNET_UNDERLAY_SWITCH, cls=VnetUnderlaySwitch,
                                  dpid="0000ffff00000000")
        for hv in plan.hypervisors:
            switch = self.addSwitch(hv.name, cls=VnetSwitch, dpid=hv.dpid, of_port=hv.of_port)
            # The model's host interface is this port, with this MAC (addr1).
            self.addLink(switch, underlay, intfName1=hv.underlay_port,
                         intfName2=f"{VNET_UNDERLAY_SWITCH}-{hv.name}", addr1=hv.underlay_mac)
        for vm in plan.vms:
            route = f"via {vm.gateway}" if vm.gateway else None
            host = self.addHost(vm.name, ip=f"{vm.ip}/{vm.prefix}", mac=vm.mac,
                                defaultRoute=route)
            self.addLink(host, vm.hypervisor, intfName1=f"{vm.name}-eth0", intfName2=vm.port)


def vnet_twohosts() -> VnetTopo:
    """The smallest useful case: two hypervisors, one VM each, one network."""
    return VnetTopo(hypervisors=2, vms_per_hypervisor=1, networks=1)


topos = {"vnet": VnetTopo, "twohosts": vnet_twohosts}
switches = {"vnet": VnetSwitch, "vnetul": VnetUnderlaySwitch}
