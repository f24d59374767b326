"""DNS answered at the edge, by real clients in VM namespaces, on both transports.

nw-a (domain vnet.test) has a dns service at 10.1.0.53 with records for its VMs and
Debian's dnsmasq as its upstream; nw-b has a dns service at 10.2.0.53 without upstream.
Everything is provisioned through the webapi (network_services type=dns, dns_services,
dns_services/:uuid/dns_records).

The upstream: the vna forwards from its own process, i.e. from the hypervisor's network
namespace, so the upstream must be reachable from there.  Each hypervisor gets a veth
into a "resolver segment" (a Linux bridge in its own namespace, 172.31.53.0/24 - the
hosts' management network), and dnsmasq runs in a namespace of its own on that segment,
bound to 172.31.53.53 only (--bind-interfaces), with no upstream of its own: it answers
the names it is given and REFUSES the rest.  The VMs' resolver is set through
/etc/netns/<vm namespace>/resolv.conf (what `ip netns exec` bind-mounts over
/etc/resolv.conf); the test creates these files and removes them when the lab closes.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import Lab
from lab.cloud import Cloud
from lab.hosts import Underlay
from tests.e2e.vna_probe import vna_metrics

TRANSPORTS = ["tunnel", "mac2mac"]
DNS_A, DNS_B = "10.1.0.53", "10.2.0.53"
RESOLVER_NET, UPSTREAM_IP = "172.31.53", "172.31.53.53"
DOMAIN = "vnet.test"
UPSTREAM_NAME, UPSTREAM_ANSWER = "ext.example.org", "198.51.100.8"
NETNS_ETC = Path("/etc/netns")

pytestmark = pytest.mark.skipif(
    shutil.which("dig") is None or shutil.which("dnsmasq") is None,
    reason="scripts/setup.sh installs dnsutils and dnsmasq-base")


def add_dns_service(c: Cloud, name: str, network: str, ip: str, mac: str,
                    public_dns: str | None) -> str:
    assert c.api is not None
    c.api.post("interfaces", uuid=f"if-{name}", mode="simulated", network_uuid=network,
               mac_address=mac, ipv4_address=ip)
    c.api.post("network_services", uuid=f"ns-{name}", interface_uuid=f"if-{name}",
               type="dns", display_name=name)
    fields = {"public_dns": public_dns} if public_dns else {}
    c.api.post("dns_services", uuid=f"dnss-{name}", network_service_uuid=f"ns-{name}",
               **fields)
    return f"dnss-{name}"


def add_record(c: Cloud, dnss: str, name: str, ip: str, ttl: int | None = None) -> dict:
    assert c.api is not None
    fields = {"ttl": ttl} if ttl is not None else {}
    return c.api.post(f"dns_services/{dnss}/dns_records", uuid=f"dnsr-{name}", name=name,
                      ipv4_address=ip, **fields)


def resolver_segment(c: Cloud, lab: Lab) -> None:
    """The hosts' management segment with dnsmasq on it (see the module doc)."""
    segment = Underlay(lab, "rs")
    for host in c.hosts.values():
        segment.connect(host.hv.netns, "rs0", peer_name=f"rs{host.index}")
        host.hv.netns.add_addr("rs0", f"{RESOLVER_NET}.{host.index}/24")
    upstream = lab.add_netns("up")
    segment.connect(upstream, "eth0", peer_name="resolver")
    upstream.add_addr("eth0", f"{UPSTREAM_IP}/24")
    upstream.set_link("lo")
    log = lab.dir / "dnsmasq.log"
    proc = upstream.popen(
        "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
        "--no-hosts", "--bind-interfaces", f"--listen-address={UPSTREAM_IP}",
        "--except-interface=lo", "--port=53", "--pid-file=", "--user=root",
        f"--host-record={UPSTREAM_NAME},{UPSTREAM_ANSWER}", "--log-queries",
        f"--log-facility={log}",
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop() -> None:  # by its PID: the one we started
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    lab.on_close(stop)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        out = upstream.run("dig", f"@{UPSTREAM_IP}", UPSTREAM_NAME, "+short", "+time=1",
                           "+tries=1", check=False)
        if UPSTREAM_ANSWER in out.stdout:
            return
        assert proc.poll() is None, f"dnsmasq exited: {log.read_text() if log.exists() else ''}"
    raise AssertionError("dnsmasq does not answer")


def set_resolver(lab: Lab, vm_ns: str, nameserver: str) -> None:
    """/etc/netns/<ns>/resolv.conf, removed (with its directory) when the lab closes."""
    directory = NETNS_ETC / vm_ns
    created = [d for d in (NETNS_ETC, directory) if not d.exists()]
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "resolv.conf"
    path.write_text(f"nameserver {nameserver}\nsearch {DOMAIN}\noptions timeout:2 attempts:1\n")

    def remove() -> None:
        path.unlink(missing_ok=True)
        for d in reversed(created):
            if d.exists() and not any(d.iterdir()):
                d.rmdir()

    lab.on_close(remove)


@pytest.fixture(scope="module", params=TRANSPORTS)
def cloud(request: pytest.FixtureRequest, e2e_environment: None) -> Iterator[Cloud]:
    with Lab().logs_kept_on_failure(f"dns-{request.param}") as lab:
        c = Cloud(lab, transport=request.param).start()
        c.add_two_routed_networks()
        assert c.api is not None
        c.api.put("networks/nw-a", domain_name=DOMAIN)
        resolver_segment(c, lab)
        dnss_a = add_dns_service(c, "dnsa", "nw-a", DNS_A, "02:00:53:00:00:01", UPSTREAM_IP)
        add_dns_service(c, "dnsb", "nw-b", DNS_B, "02:00:53:00:00:02", None)
        c.add_vm("h1", "vm1", "nw-a", "10.1.0.11")
        c.add_vm("h2", "vm2", "nw-a", "10.1.0.12")
        c.add_vm("h2", "vm3", "nw-a", "10.1.0.13")
        c.add_vm("h1", "vm4", "nw-b", "10.2.0.14")
        for vm in ("vm1", "vm2", "vm3"):
            add_record(c, dnss_a, vm, c.vms[vm].ip.split("/")[0])
        for name, vm in c.vms.items():
            set_resolver(lab, vm.netns.name, DNS_A if name != "vm4" else DNS_B)
        c.wait_ping("vm1", "10.1.0.13", timeout=15)
        c.wait_ping("vm4", "10.1.0.13", timeout=15)
        yield c


def dig(c: Cloud, vm: str, *args: str) -> tuple[str, float]:
    started = time.monotonic()
    out = c.vms[vm].netns.run("dig", *args, "+time=3", "+tries=1", check=False, timeout=15)
    return out.stdout, time.monotonic() - started


def status(output: str) -> str:
    found = re.search(r"status: (\w+)", output)
    assert found, output
    return found.group(1)


def answer_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line and not line.startswith(";")]


def test_a_vm_resolves_another_by_name_with_dig_and_getent(cloud: Cloud) -> None:
    out, _ = dig(cloud, "vm1", f"@{DNS_A}", "vm3", "+short")
    assert out.split() == ["10.1.0.13"], out
    out, _ = dig(cloud, "vm2", f"@{DNS_A}", f"vm1.{DOMAIN}", "+short")  # across hosts
    assert out.split() == ["10.1.0.11"], out
    got = cloud.vms["vm1"].netns.run("getent", "hosts", "vm3", check=False)
    assert got.stdout.split()[:2] == ["10.1.0.13", f"vm3.{DOMAIN}"] or \
        got.stdout.split()[:1] == ["10.1.0.13"], got.stdout + got.stderr


def test_ping_by_name(cloud: Cloud) -> None:
    result = cloud.vms["vm1"].ping("vm3", count=2, interval=0.2, wait=2)
    assert result.ok, result.output


def test_ptr_with_dig_x(cloud: Cloud) -> None:
    out, _ = dig(cloud, "vm3", f"@{DNS_A}", "-x", "10.1.0.12", "+short")
    assert out.split() == [f"vm2.{DOMAIN}."], out


def test_aaaa_of_a_known_name_is_an_empty_noerror_at_once(cloud: Cloud) -> None:
    out, seconds = dig(cloud, "vm1", f"@{DNS_A}", "vm3", "AAAA")
    assert status(out) == "NOERROR" and "ANSWER: 0" in out, out
    assert seconds < 2, seconds


def forwarded(c: Cloud, host: str) -> float:
    node = c.hosts[host].node_id
    return vna_metrics(c, host).get(
        f'vnet_vna_dns_forwarded_total{{node_id="{node}",result="answered"}}', 0.0)


def test_other_names_are_forwarded_to_the_upstream(cloud: Cloud) -> None:
    before = forwarded(cloud, "h1")
    out, _ = dig(cloud, "vm1", f"@{DNS_A}", UPSTREAM_NAME, "+short")
    assert out.split() == [UPSTREAM_ANSWER], out
    assert forwarded(cloud, "h1") == before + 1
    out, _ = dig(cloud, "vm3", f"@{DNS_A}", UPSTREAM_NAME, "+short")  # h2's vna too
    assert out.split() == [UPSTREAM_ANSWER], out
    got = cloud.vms["vm2"].netns.run("getent", "hosts", UPSTREAM_NAME, check=False)
    assert got.stdout.split()[:1] == [UPSTREAM_ANSWER], got.stdout + got.stderr
    # what the upstream refuses comes back refused
    out, _ = dig(cloud, "vm1", f"@{DNS_A}", "unknown.example.org")
    assert status(out) == "REFUSED", out


def test_without_upstream_unknown_names_are_refused_at_once(cloud: Cloud) -> None:
    out, seconds = dig(cloud, "vm4", f"@{DNS_B}", UPSTREAM_NAME)
    assert status(out) == "REFUSED", out
    assert seconds < 2, seconds
    # nw-b's service has no records: vm3 is not one of its names either
    out, _ = dig(cloud, "vm4", f"@{DNS_B}", "vm3")
    assert status(out) == "REFUSED", out


def test_record_changes_apply_to_the_next_query(cloud: Cloud) -> None:
    assert cloud.api is not None
    add_record(cloud, "dnss-dnsa", "www", "10.1.0.99", ttl=5)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        out, _ = dig(cloud, "vm1", f"@{DNS_A}", "www", "+short")
        if out.split() == ["10.1.0.99"]:
            break
        time.sleep(0.2)
    assert out.split() == ["10.1.0.99"], out
    cloud.api.delete("dns_services/dnss-dnsa/dns_records/dnsr-www")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        out, _ = dig(cloud, "vm1", f"@{DNS_A}", "www")
        if status(out) != "NOERROR":
            break
        time.sleep(0.2)
    assert status(out) == "REFUSED", out  # the upstream does not know it either


def test_tcp_is_not_answered_and_no_flow_punts_other_traffic(cloud: Cloud) -> None:
    for host in cloud.hosts:
        punts = [f for f in cloud.flows(host) if "tp_dst=53" in f]
        assert punts and all("CONTROLLER" in f and "udp" in f for f in punts), punts
