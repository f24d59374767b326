"""Partial joins, as an OpenVNet operator writes them: each network joined only to the
datapath where its VMs live, plus a MAC per datapath for the router
(`POST /datapaths/:dp/route_links/:rl`). Routed traffic between the hosts must flow on
both transports; on mac2mac it crosses with the datapath_route_link MACs. Before those
rows exist the loss is reported in the datapath's status (and by vnctl), not silent.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from lab import Lab
from lab.capture import capture
from lab.cloud import Cloud, NetworkInfo
from vnctl.cli import cli

DPRL_MACS = {"h1": "02:dd:00:00:00:01", "h2": "02:dd:00:00:00:02"}


def add_network_on(c: Cloud, uuid: str, cidr: str, host: str) -> None:
    """A virtual network joined to one host only (Cloud.add_network joins every host)."""
    net = ipaddress.IPv4Network(cidr)
    assert c.api is not None
    c.api.post("networks", uuid=uuid, ipv4_network=str(net.network_address),
               ipv4_prefix=net.prefixlen)
    c.networks[uuid] = NetworkInfo(uuid, net)
    c.api.post(f"datapaths/{c.hosts[host].datapath_uuid}/networks/{uuid}",
               broadcast_mac_address=f"02:fd:{c.hosts[host].index:02x}:00:00:{len(c.networks):02x}",
               interface_uuid=c.hosts[host].host_interface_uuid)


def status(c: Cloud, host: str) -> dict:
    assert c.api is not None
    return c.api.get(f"datapaths/{c.hosts[host].datapath_uuid}/status")


def wait_unreachable(c: Cloud, host: str, expected: set[str], timeout: float = 15.0) -> dict:
    """The datapath's reported status once its unreachable interfaces are `expected`."""
    deadline = time.monotonic() + timeout
    while True:
        agent = status(c, host)["agent"] or {}
        seen = {u["interface_uuid"] for u in agent.get("unreachable", [])}
        if "unreachable" in agent and seen == expected:
            return agent
        if time.monotonic() > deadline:
            raise AssertionError(f"{host}: unreachable {seen}, expected {expected}: {agent}")
        time.sleep(0.3)


def partial_cloud(c: Cloud) -> Cloud:
    """Three hosts; nw-a joined by h1 only (vm1), nw-b by h2 only (vm2), router rl-1
    between them; h3 hosts nothing of it. No datapath_route_links yet."""
    for name in ("h1", "h2", "h3"):
        c.add_host(name)
    add_network_on(c, "nw-a", "10.1.0.0/24", "h1")
    add_network_on(c, "nw-b", "10.2.0.0/24", "h2")
    c.add_router("rl-1", {"nw-a": "10.1.0.1", "nw-b": "10.2.0.1"})
    c.add_vm("h1", "vm1", "nw-a", "10.1.0.11")
    c.add_vm("h2", "vm2", "nw-b", "10.2.0.12")
    return c


@pytest.fixture(scope="module", params=["tunnel", "mac2mac"])
def cloud(request: pytest.FixtureRequest, e2e_environment: None) -> Iterator[Cloud]:
    with Lab().logs_kept_on_failure(f"partial-{request.param}") as lab:
        yield partial_cloud(Cloud(lab, transport=request.param).start())


def test_routed_traffic_flows_once_each_datapath_has_a_route_link_mac(cloud: Cloud) -> None:
    vm1, vm2 = cloud.vms["vm1"], cloud.vms["vm2"]
    if cloud.transport == "mac2mac":
        # Without the route-link rows nothing can carry it: reported, not silent.
        agent = wait_unreachable(cloud, "h1", {"if-vm2"})
        assert agent["unreachable_total"] == 1
        [lost] = agent["unreachable"]
        assert (lost["network_uuid"], lost["datapath_uuid"]) == ("nw-b", "dp-h2")
        assert "no datapath_network for nw-b on dp-h1" in lost["reason"]
        wait_unreachable(cloud, "h2", {"if-vm1"})
        shown = CliRunner().invoke(cli, ["datapaths", "show", "dp-h1"], env={
            "VNCTL_WEBAPI_URI": cloud.services.webapi_url + "/api/1.0"})
        assert shown.exit_code == 0, shown.output
        assert "if-vm2(nw-b)" in shown.output and "no datapath_network" in shown.output
        assert vm1.ping("10.2.0.12", count=2, interval=0.2, wait=0.5).received == 0
    assert cloud.api is not None
    cloud.api.post("datapaths/dp-h1/route_links/rl-1", mac_address=DPRL_MACS["h1"],
                   interface_uuid=cloud.hosts["h1"].host_interface_uuid)
    cloud.api.post("datapaths/dp-h2/route_links/rl-1", mac_address=DPRL_MACS["h2"])
    cloud.wait_ping("vm1", "10.2.0.12", timeout=10)
    h2, h3 = cloud.hosts["h2"].hv, cloud.hosts["h3"].hv
    with capture(h2.netns, h2.underlay_port or "ul0") as at_h2, \
            capture(h3.netns, h3.underlay_port or "ul0") as at_h3:
        there = vm1.ping("10.2.0.12", count=3, interval=0.1, wait=1)
        back = vm2.ping("10.1.0.11", count=3, interval=0.1, wait=1)
    assert there.ok and there.ttls == [63, 63, 63], there.output
    assert back.ok and back.ttls == [63, 63, 63], back.output
    if cloud.transport == "mac2mac":
        direct = [x for x in at_h2.lines if "10.1.0.11 > 10.2.0.12" in x]
        assert len(direct) >= 3, at_h2.lines
        # eth src > dst on the wire are the route-link MACs, never a VM's
        assert all(f"{DPRL_MACS['h1']} > {DPRL_MACS['h2']}" in x for x in direct), direct
    assert [x for x in at_h3.lines if "10.2.0.12" in x or "10.1.0.11" in x] == []
    transfer = vm1.tcp_transfer(vm2, 2 * 1024 * 1024)
    assert transfer.ok, transfer
    for host in ("h1", "h2", "h3"):
        wait_unreachable(cloud, host, set())


def test_routed_reachability_follows_the_route_link_rows(cloud: Cloud) -> None:
    """Deleting one datapath's route-link MAC stops mac2mac traffic and reports it;
    re-adding restores it. Tunnel mode does not depend on those rows."""
    assert cloud.api is not None
    cloud.api.delete("datapaths/dp-h2/route_links/rl-1")
    try:
        if cloud.transport == "mac2mac":
            wait_unreachable(cloud, "h1", {"if-vm2"})
            assert cloud.vms["vm1"].ping("10.2.0.12", count=2, interval=0.2,
                                         wait=0.5).received == 0
        else:
            cloud.wait_ping("vm1", "10.2.0.12", timeout=5)
            assert status(cloud, "h1")["agent"]["unreachable"] == []
    finally:
        cloud.api.post("datapaths/dp-h2/route_links/rl-1", mac_address=DPRL_MACS["h2"])
    cloud.wait_ping("vm1", "10.2.0.12", timeout=10)
    wait_unreachable(cloud, "h1", set())


def test_the_vna_warns_once_per_unreachable_spell(cloud: Cloud) -> None:
    """h1's vna warned about vm2 once for each spell without route-link rows (two on
    mac2mac: before they were created and while one was deleted), not per report."""
    vna = cloud.hosts["h1"].vna
    assert vna is not None
    warnings = [line for line in vna.log_text().splitlines()
                if "if-vm2 is unreachable from this datapath" in line]
    assert len(warnings) == (2 if cloud.transport == "mac2mac" else 0), warnings
    assert all("no datapath_network for nw-b on dp-h1" in line for line in warnings), warnings
