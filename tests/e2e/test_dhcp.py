"""DHCP answered by the vna where the VM is, with real clients in VM namespaces on both
transports: Debian's `dhclient` (isc-dhcp-client, with Debian's dhclient-script and its
rfc3442 hook) and busybox `udhcpc`.  Each gets its model lease, prefix, default route
and MTU, keeps it across renewals, and renewals are still answered after its vna is
killed and started again (the flows stayed in the switch; the new vna answers).

The dhcp service and a dns service on nw-a are created through the API like any other
object: a simulated interface with a lease, and a network service naming it.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator

import pytest

from lab import Lab
from lab.cloud import Cloud
from lab.dhcp import Dhclient, Udhcpc, addresses, default_route, mtu
from tests.e2e.vna_probe import agents_caught_up, vna_metrics

TRANSPORTS = ["tunnel", "mac2mac"]
SERVER_IP, DNS_IP, GATEWAY = "10.1.0.2", "10.1.0.3", "10.1.0.1"
DHCLIENT_VM, UDHCPC_VM = "10.1.0.21", "10.1.0.22"
RENEWAL = 2  # seconds: dhclient's superseded T1, so it renews (unicast) all the time


@pytest.fixture(scope="module", params=TRANSPORTS)
def cloud(request: pytest.FixtureRequest, e2e_environment: None) -> Iterator[Cloud]:
    for program in ("dhclient", "busybox"):
        assert shutil.which(program), f"{program} missing: run scripts/setup.sh"
    with Lab().logs_kept_on_failure(f"dhcp-{request.param}") as lab:
        c = Cloud(lab, transport=request.param).start()
        c.add_two_routed_networks()
        assert c.api is not None
        c.api.put("networks/nw-a", domain_name="vnet.test")
        for name, ip, kind, mac in (("dhcpa", SERVER_IP, "dhcp", "02:00:30:00:00:02"),
                                    ("dnsa", DNS_IP, "dns", "02:00:30:00:00:03")):
            c.api.post("interfaces", uuid=f"if-{name}", mode="simulated", network_uuid="nw-a",
                       mac_address=mac, ipv4_address=ip)
            c.api.post("network_services", uuid=f"ns-{name}", interface_uuid=f"if-{name}",
                       type=kind)
        c.add_vm("h1", "vmd", "nw-a", DHCLIENT_VM, dhcp=True)
        c.add_vm("h2", "vmu", "nw-a", UDHCPC_VM, dhcp=True)
        c.add_vm("h2", "vm3", "nw-b", "10.2.0.13")
        yield c


def vm_mtu(c: Cloud) -> int:
    return 1450 if c.transport == "tunnel" else 1500


def dhcp_answers(c: Cloud, host: str) -> float:
    node = c.hosts[host].node_id
    return vna_metrics(c, host).get(
        f'vnet_vna_punts_handled_total{{feature="dhcp",node_id="{node}"}}', 0.0)




def assert_configured(c: Cloud, vm: str, address: str) -> None:
    v = c.vms[vm]
    # The client logs BOUND from its script, which then configures the interface: give
    # it a moment on a loaded machine.
    deadline = time.monotonic() + 5
    while not addresses(v) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert addresses(v) == [f"{address}/24"]
    assert default_route(v) == GATEWAY
    assert mtu(v) == vm_mtu(c)
    c.wait_ping(vm, "10.2.0.13", timeout=10)  # routed through the gateway it was given


@pytest.fixture(scope="module")
def dhclient(cloud: Cloud) -> Dhclient:
    client = Dhclient(cloud.lab, cloud.vms["vmd"]).start(renewal_time=RENEWAL)
    client.wait_event(Dhclient.BOUND)
    return client


@pytest.fixture(scope="module")
def udhcpc(cloud: Cloud) -> Udhcpc:
    client = Udhcpc(cloud.lab, cloud.vms["vmu"]).start()
    client.wait_event(Udhcpc.BOUND)
    return client


def test_dhclient_gets_its_lease_prefix_default_route_mtu_and_options(
        cloud: Cloud, dhclient: Dhclient) -> None:
    assert_configured(cloud, "vmd", DHCLIENT_VM)
    env = dhclient.wait_event(Dhclient.BOUND)
    assert env["new_ip_address"] == DHCLIENT_VM
    assert env["new_subnet_mask"] == "255.255.255.0"
    assert env["new_routers"] == GATEWAY
    assert env["new_interface_mtu"] == str(vm_mtu(cloud))
    assert env["new_domain_name"] == "vnet.test"
    assert env["new_domain_name_servers"] == DNS_IP
    assert env["new_dhcp_server_identifier"] == SERVER_IP
    assert env["new_dhcp_lease_time"] == "86400"
    # RFC 3442 octets: 0.0.0.0/0 via the gateway
    assert env["new_rfc3442_classless_static_routes"] == "0 10 1 0 1"
    assert dhcp_answers(cloud, "h1") >= 2  # DISCOVER and REQUEST, on the VM's own vna


def test_udhcpc_gets_its_lease_prefix_default_route_mtu_and_options(
        cloud: Cloud, udhcpc: Udhcpc) -> None:
    assert_configured(cloud, "vmu", UDHCPC_VM)
    env = udhcpc.wait_event(Udhcpc.BOUND)
    assert (env["ip"], env["mask"], env["router"]) == (UDHCPC_VM, "24", GATEWAY)
    assert env["mtu"] == str(vm_mtu(cloud))
    assert env["dns"].split() == [DNS_IP] and env["domain"] == "vnet.test"
    assert env["serverid"] == SERVER_IP and env["lease"] == "86400"
    assert env["staticroutes"] == f"0.0.0.0/0 {GATEWAY}"


def test_each_dhcp_vm_punts_dhcp_through_its_own_meter_and_no_other_vm_does(
        cloud: Cloud) -> None:
    for host in cloud.hosts:
        punts = [f for f in cloud.flows(host) if "table=5" in f and "tp_dst=67" in f]
        found = [re.search(r"in_port=(\d+).*tp_src=68,tp_dst=67.*actions=meter:(\d+),"
                           r"CONTROLLER", f) for f in punts]
        assert all(found), punts
        local = {vm.ofport for name, vm in cloud.vms.items()
                 if vm.hv is cloud.hosts[host].hv and name != "vm3"}  # vm3: nw-b
        assert {int(f.group(1)) for f in found} == local, punts
        assert all(f.group(1) == f.group(2) for f in found), punts


def test_a_vm_on_a_network_without_dhcp_service_is_not_answered(cloud: Cloud) -> None:
    before = dhcp_answers(cloud, "h2")
    result = cloud.vms["vm3"].run("busybox", "udhcpc", "-n", "-q", "-t", "2", "-T", "1",
                                  "-i", "eth0", "-s", "/bin/true", check=False)
    assert result.returncode != 0, result.stdout + result.stderr  # no lease
    assert dhcp_answers(cloud, "h2") == before
    assert addresses(cloud.vms["vm3"]) == ["10.2.0.13/24"]


def test_renewals_keep_the_lease(cloud: Cloud, dhclient: Dhclient, udhcpc: Udhcpc) -> None:
    seen = len(dhclient.events())
    env = dhclient.wait_event(Dhclient.RENEWED, after=seen, timeout=RENEWAL * 5)
    assert env["new_ip_address"] == DHCLIENT_VM
    seen = len(udhcpc.events())
    udhcpc.renew()
    env = udhcpc.wait_event(Udhcpc.RENEWED, after=seen)
    assert env["ip"] == UDHCPC_VM
    assert_configured(cloud, "vmd", DHCLIENT_VM)
    assert_configured(cloud, "vmu", UDHCPC_VM)


def test_renewals_are_answered_after_the_vna_is_killed_and_restarted(
        cloud: Cloud, dhclient: Dhclient, udhcpc: Udhcpc) -> None:
    for host in ("h1", "h2"):
        handle = cloud.hosts[host].vna
        assert handle is not None
        handle.kill9()
    for host in ("h1", "h2"):
        cloud.start_vna(cloud.hosts[host])
    agents_caught_up(cloud)
    seen = len(dhclient.events())
    env = dhclient.wait_event(Dhclient.RENEWED, after=seen, timeout=RENEWAL * 10)
    assert env["new_ip_address"] == DHCLIENT_VM
    seen = len(udhcpc.events())
    udhcpc.renew()
    assert udhcpc.wait_event(Udhcpc.RENEWED, after=seen)["ip"] == UDHCPC_VM
    assert dhcp_answers(cloud, "h1") >= 1 and dhcp_answers(cloud, "h2") >= 1  # new vnas
    assert_configured(cloud, "vmd", DHCLIENT_VM)
    assert_configured(cloud, "vmu", UDHCPC_VM)


def test_the_networks_mtu_overrides_the_transport_default_at_the_next_renewal(
        cloud: Cloud, udhcpc: Udhcpc) -> None:
    assert cloud.api is not None
    # The last test of the module: the cloud goes away with the changed network.
    cloud.api.put("networks/nw-a", mtu=1400)
    agents_caught_up(cloud)
    seen = len(udhcpc.events())
    udhcpc.renew()
    assert udhcpc.wait_event(Udhcpc.RENEWED, after=seen)["mtu"] == "1400"
    assert mtu(cloud.vms["vmu"]) == 1400
