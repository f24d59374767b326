"""A network of mode `physical`: VMs bridged onto the host's physical port, no isolation
and no encapsulation, as OpenVNet does for the gateway case."""

from __future__ import annotations

from lab import Lab, add_veth
from lab.cloud import Cloud


def test_vm_on_a_physical_network_reaches_an_external_host(lab: Lab) -> None:
    cloud = Cloud(lab).start()
    host = cloud.add_host("h1")
    assert cloud.api is not None
    # The "external" machine sits on the physical segment behind h1's port phys0.
    external = lab.add_netns("ext")
    add_veth("phys0", host.hv.netns, "eth0", external, b_mac="02:ee:00:00:00:64")
    external.add_addr("eth0", "172.16.0.100/24")
    host.hv.ovs.add_port("br-int", "phys0")
    cloud.add_network("nw-ext", "172.16.0.0/24", mode="physical")
    cloud.api.post("interfaces", uuid="if-h1phys", mode="host", owner_datapath_uuid="dp-h1",
                   port_name="phys0")
    cloud.api.post("datapaths/dp-h1/networks/nw-ext", broadcast_mac_address="02:fc:00:00:00:01",
                   interface_uuid="if-h1phys")
    vm = cloud.add_vm("h1", "vmp", "nw-ext", "172.16.0.10")
    cloud.wait_ping("vmp", "172.16.0.100", timeout=10)
    # ARP for the external host was not answered by a flow (it is not in the model): it
    # crossed the physical port, and the external host learned the VM's real MAC.
    neigh = external.run("ip", "neigh", "show", "172.16.0.10").stdout
    assert vm.mac in neigh, neigh
