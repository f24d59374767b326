"""traceroute through the distributed router shows the logical hops, on both transports:
Debian's `traceroute` (UDP and -I) and `tracepath` from a VM through the chain
nw-a - r1 - nw-b - r2 - nw-e across hosts print r1's gateway, r2's address on the
transit network, then the destination - while the packets themselves still go straight
from the source datapath to the destination's.  The time-exceeded answers come from the
source vna (invalid-TTL packet-ins of the ROUTE entries, vna.features.routing).

Its own cloud (not test_vna_network's): that module checks that no packet-in ever
happened in its scenarios.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from lab import Lab
from lab.cloud import Cloud
from tests.e2e.vna_probe import vna_metrics

TRANSPORTS = ["tunnel", "mac2mac"]
HOPS = ["10.1.0.1", "10.2.0.254", "10.5.0.16"]

@pytest.fixture(scope="module", params=TRANSPORTS)
def cloud(request: pytest.FixtureRequest, e2e_environment: None) -> Iterator[Cloud]:
    with Lab().logs_kept_on_failure(f"traceroute-{request.param}") as lab:
        c = Cloud(lab, transport=request.param).start()
        for name in ("h1", "h2"):
            c.add_host(name)
        c.add_network("nw-a", "10.1.0.0/24")
        c.add_network("nw-b", "10.2.0.0/24")
        c.add_network("nw-e", "10.5.0.0/24")
        c.add_router("rl-r1", {"nw-a": "10.1.0.1", "nw-b": "10.2.0.1"})
        c.add_router("rl-r2", {"nw-b": "10.2.0.254", "nw-e": "10.5.0.1"})
        c.add_route("r-r1far", "rl-r1", "if-r1p2", "nw-b", "10.5.0.0/24")
        c.add_route("r-r2far", "rl-r2", "if-r2p1", "nw-b", "10.1.0.0/24")
        c.add_vm("h1", "vm1", "nw-a", "10.1.0.11")
        c.add_vm("h2", "vm6", "nw-e", "10.5.0.16")
        # Linux limits ICMP errors per peer (1/s); traceroute's parallel probes need the
        # destination's port unreachables all at once.
        c.vms["vm6"].run("sysctl", "-qw", "net.ipv4.icmp_ratelimit=0")
        c.wait_ping("vm1", "10.5.0.16", timeout=15)
        yield c


def hops(output: str) -> list[str]:
    """The address of each numbered hop line (`N  ADDR ...` / `N:  ADDR ...`)."""
    found: dict[int, str] = {}
    for line in output.splitlines():
        m = re.match(r"\s*(\d+)\??:?\s+(\d+\.\d+\.\d+\.\d+)", line)
        if m and int(m.group(1)) not in found:
            found[int(m.group(1))] = m.group(2)
    return [found[n] for n in sorted(found)]


def time_exceeded(c: Cloud, host: str) -> float:
    node = c.hosts[host].node_id
    return vna_metrics(c, host).get(
        f'vnet_vna_icmp_errors_sent_total{{node_id="{node}",type="time_exceeded"}}', 0.0)


@pytest.mark.parametrize("mode", [[], ["-I"]], ids=["udp", "icmp"])
def test_traceroute_shows_the_logical_hops(cloud: Cloud, mode: list[str]) -> None:
    before = time_exceeded(cloud, "h1")
    out = cloud.vms["vm1"].run("traceroute", "-n", "-q1", "-w2", *mode, "10.5.0.16",
                               timeout=60).stdout
    assert hops(out) == HOPS, out
    # Answered by the source vna: one time exceeded per expiring probe (hops 1 and 2).
    assert time_exceeded(cloud, "h1") - before >= 2
    assert time_exceeded(cloud, "h2") == 0


def test_tracepath_shows_the_logical_hops(cloud: Cloud) -> None:
    out = cloud.vms["vm1"].run("tracepath", "-n", "10.5.0.16", timeout=60).stdout
    assert hops(out) == HOPS, out
    assert "reached" in out, out


def test_a_ping_with_ttl_too_small_gets_time_exceeded(cloud: Cloud) -> None:
    result = cloud.vms["vm1"].ping("10.5.0.16", count=1, ttl=2, wait=2)
    assert result.received == 0
    assert "From 10.2.0.254" in result.output and "Time to live exceeded" in result.output, \
        result.output


@pytest.mark.parametrize("address", ["10.1.0.1", "10.2.0.1", "10.2.0.254", "10.5.0.1"])
def test_every_router_address_on_the_path_answers_ping(cloud: Cloud, address: str) -> None:
    """r1's gateway and its port on nw-b, r2's ports on nw-b and nw-e: answered in flows
    on vm1's datapath (as Linux routers answer for every local address)."""
    before = vna_metrics(cloud, "h1")
    result = cloud.vms["vm1"].ping(address, count=3, interval=0.1, wait=1)
    assert result.ok and result.received == 3, result.output
    packet_ins = [k for k in vna_metrics(cloud, "h1") if k.startswith("vnet_vna_packet_ins")]
    assert {k: vna_metrics(cloud, "h1")[k] for k in packet_ins} == \
        {k: before.get(k, 0.0) for k in packet_ins}


@pytest.mark.parametrize(("address", "text", "router"), [
    ("10.9.0.9", "Destination Net Unreachable", "10.1.0.1"),  # r1 has no route
    ("10.2.0.99", "Destination Host Unreachable", "10.1.0.1"),  # nobody on nw-b
    ("10.5.0.99", "Destination Host Unreachable", "10.2.0.254"),  # nobody on nw-e: r2
])
def test_unroutable_destinations_get_icmp_unreachable_at_once(cloud: Cloud, address: str,
                                                              text: str, router: str) -> None:
    result = cloud.vms["vm1"].ping(address, count=1, wait=2)
    assert result.received == 0
    assert f"From {router}" in result.output and text in result.output, result.output
