"""`ping -s 3000 <gateway>` (or the router's other address) from a VM, on both
transports: the fragments are punted through the vif's meter, reassembled by the vna and
answered with the full data, fragmented to what fit on the way in (RFC 1122 3.2.2.6).
Large pings between VMs still go through the switch alone, and nothing is punted until a
fragment is sent.

Its own cloud (not test_vna_network's): that module checks that no packet-in ever
happened in its scenarios.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from lab import Lab
from lab.capture import capture
from lab.cloud import Cloud
from lab.hosts import TUNNEL_VM_MTU
from tests.e2e.vna_probe import vna_metrics

TRANSPORTS = ["tunnel", "mac2mac"]
SIZE, COUNT = 3000, 3  # ICMP data: 3008-byte ICMP messages, three fragments each


@pytest.fixture(scope="module", params=TRANSPORTS)
def cloud(request: pytest.FixtureRequest, e2e_environment: None) -> Iterator[Cloud]:
    with Lab().logs_kept_on_failure(f"fragments-{request.param}") as lab:
        c = Cloud(lab, transport=request.param).start()
        c.add_two_routed_networks()
        c.add_vm("h1", "vm1", "nw-a", "10.1.0.11")
        c.add_vm("h2", "vm2", "nw-a", "10.1.0.12")
        c.add_vm("h2", "vm3", "nw-b", "10.2.0.13")
        for dst in ("10.1.0.12", "10.2.0.13"):
            c.wait_ping("vm1", dst, timeout=15)
        yield c


def vm_mtu(c: Cloud) -> int:
    return TUNNEL_VM_MTU if c.transport == "tunnel" else 1500


def punted(c: Cloud, host: str) -> tuple[float, float]:
    """(packet-ins, packet-ins the gateway feature handled) of a host's vna so far, not
    counting the routers' ICMP errors (e.g. host unreachable for a ping sent while the
    destination's binding was still on its way, during the setup's wait_ping)."""
    m = vna_metrics(c, host)
    node = c.hosts[host].node_id
    routing = m.get(f'vnet_vna_punts_handled_total{{feature="routing",node_id="{node}"}}', 0.0)
    return (sum(v for k, v in m.items() if k.startswith("vnet_vna_packet_ins_total")) - routing,
            m.get(f'vnet_vna_punts_handled_total{{feature="gateway",node_id="{node}"}}', 0.0))


def big_ping(c: Cloud, vm: str, dst: str) -> None:
    result = c.vms[vm].ping(dst, count=COUNT, size=SIZE, interval=0.2, wait=2)
    assert result.ok, f"{vm} -> {dst} -s {SIZE}: {result.output}"


def test_steady_state_punts_nothing_and_each_vif_punts_fragments_through_its_meter(
        cloud: Cloud) -> None:
    for host in cloud.hosts:
        assert punted(cloud, host) == (0, 0), host
        flows = [f for f in cloud.flows(host) if "nw_frag=yes" in f]
        found = [re.search(r"in_port=(\d+).*nw_dst=(\S+?),nw_frag=yes.*"
                           r"actions=meter:(\d+),CONTROLLER", f) for f in flows]
        assert all(found), flows
        local = {vm.ofport: vm for vm in cloud.vms.values() if vm.hv is cloud.hosts[host].hv}
        # per local vif, each address of the router (its gateway and the other port)
        assert sorted((int(f.group(1)), f.group(2)) for f in found) == sorted(
            (port, address) for port in local for address in ("10.1.0.1", "10.2.0.1")), flows
        for f in found:  # the vif's own meter
            assert int(f.group(3)) == local[int(f.group(1))].ofport


@pytest.mark.parametrize("vm,gateway,host", [("vm1", "10.1.0.1", "h1"),
                                             ("vm3", "10.2.0.1", "h2"),
                                             ("vm1", "10.2.0.1", "h1")])  # the far address
def test_a_fragmented_ping_of_the_gateway_is_answered_in_full(cloud: Cloud, vm: str,
                                                              gateway: str, host: str) -> None:
    before = punted(cloud, host)
    with capture(cloud.vms[vm].netns, "eth0", f"src host {gateway}") as replies:
        big_ping(cloud, vm, gateway)
    fragments_in = COUNT * 3
    after = punted(cloud, host)
    # Each request fragment was one packet-in, handled by the gateway feature.
    assert (after[0] - before[0], after[1] - before[1]) == (fragments_in, fragments_in)
    # The replies arrive as fragments no larger than the requests' (the VM's MTU).
    lengths = [int(x) for line in replies.lines for x in re.findall(r"length (\d+):", line)]
    assert len(lengths) == fragments_in, replies.lines
    assert max(lengths) <= vm_mtu(cloud) + 14, replies.lines  # + the Ethernet header


def test_a_fragmented_ping_between_vms_never_reaches_the_controller(cloud: Cloud) -> None:
    before = {h: punted(cloud, h) for h in cloud.hosts}
    big_ping(cloud, "vm1", "10.1.0.12")  # same network, across hosts
    big_ping(cloud, "vm1", "10.2.0.13")  # routed, across hosts
    big_ping(cloud, "vm3", "10.1.0.11")
    assert {h: punted(cloud, h) for h in cloud.hosts} == before
