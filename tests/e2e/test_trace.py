"""`vnctl trace` agrees with real packets (issue 14): on real Open vSwitch with real vnas,
each trace verdict is checked against what ping and nc see between VM namespaces.

One cloud per transport: two hosts, nw-a and nw-b joined by the distributed router,

    h1: web1 10.1.0.11 (in sg-web: tcp 80 and icmp)   cli1 10.1.0.12
    h2: cli3 10.2.0.14

Allowed (routed, other host, admitted by the group), denied (the group does not admit
tcp 81), routed without filtering, unroutable (no route; nobody holds the address
behind the router; nobody answers ARP on the own network).  trace runs as vnctl does
(the CLI, in-process), against the webapi, knowing nothing the vnas know but the
transport.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from click.testing import CliRunner

from lab import Lab
from lab.cloud import Cloud
from lab.traffic import TcpListener, tcp_connect
from vnctl.cli import cli

VMS = {"web1": ("h1", "nw-a", "10.1.0.11"), "cli1": ("h1", "nw-a", "10.1.0.12"),
       "cli3": ("h2", "nw-b", "10.2.0.14")}
PORTS = (80, 81)
WAIT = 1.0  # seconds a probe that should fail waits for an answer
EXIT = {"delivered": 0, "dropped": 3, "unroutable": 4}


@dataclass(frozen=True)
class Case:
    src: str
    dst: str  # an address
    proto: str = "icmp"
    port: int | None = None

    def __str__(self) -> str:
        return f"{self.proto} {self.src}->{self.dst}" + (f":{self.port}" if self.port else "")


def ip(vm: str) -> str:
    return VMS[vm][2]


@pytest.fixture(scope="module", params=["tunnel", "mac2mac"])
def cloud(request: pytest.FixtureRequest, e2e_environment: None) -> Iterator[Cloud]:
    with Lab().logs_kept_on_failure(f"trace-{request.param}") as lab:
        c = Cloud(lab, transport=request.param).start()
        c.add_two_routed_networks()
        for name, (host, network, address) in VMS.items():
            c.add_vm(host, name, network, address)
            for port in PORTS:
                lab.on_close(TcpListener(c.vms[name].netns, port).stop)
        c.api.post("security_groups", uuid="sg-web", rules="tcp:80:0.0.0.0/0\nicmp:-1:0.0.0.0/0")
        c.api.post("security_groups/sg-web/interfaces/if-web1")
        c.wait_ping("cli3", ip("web1"), timeout=15)
        c.wait_ping("cli1", ip("cli3"), timeout=15)
        _until_denied(c, Case("cli3", ip("web1"), "tcp", 81))
        yield c


def _until_denied(c: Cloud, case: Case, timeout: float = 10.0) -> None:
    """The group's flows are in: tcp 81 to web1 is dropped (not merely unanswered once)."""
    started = time.monotonic()
    while real(c, case, wait=0.3):
        assert time.monotonic() - started < timeout, f"{case} still passes: sg-web not applied"


def real(c: Cloud, case: Case, wait: float = WAIT) -> bool:
    """Whether the real packet gets through and back: a ping answered, a TCP connection
    opened (a refusal would mean the SYN got through: listeners run on every port)."""
    netns = c.vms[case.src].netns
    if case.proto == "tcp":
        assert case.port is not None
        return tcp_connect(netns, case.dst, case.port, timeout=wait).ok
    return c.vms[case.src].ping(case.dst, count=1, wait=wait).ok


def traced(c: Cloud, case: Case, *extra: str) -> dict:
    args = ["--webapi-uri", c.services.webapi_url, "trace", "--from", f"if-{case.src}",
            "--to", case.dst, "--proto", case.proto, "--transport", c.transport, "--json",
            *extra]
    if case.port is not None:
        args += ["--dport", str(case.port)]
    result = CliRunner().invoke(cli, args)
    out = json.loads(result.stdout)
    assert result.exit_code == EXIT[out["verdict"]], (case, result.output)
    return out


CASES = {
    # allowed: routed across the distributed router, other host, admitted by sg-web
    Case("cli3", ip("web1")): "delivered",
    Case("cli3", ip("web1"), "tcp", 80): "delivered",
    # denied: sg-web admits no tcp 81, from another host or the same one
    Case("cli3", ip("web1"), "tcp", 81): "dropped",
    Case("cli1", ip("web1"), "tcp", 81): "dropped",
    # routed the other way, to an unfiltered VM
    Case("cli1", ip("cli3")): "delivered",
    Case("web1", ip("cli3"), "tcp", 81): "delivered",
    # unroutable: no route; nobody behind the router holds it; nobody on the own network
    Case("cli1", "10.9.9.9"): "unroutable",
    Case("cli1", "10.2.0.99"): "unroutable",
    Case("cli3", "10.2.0.99"): "unroutable",
}


@pytest.mark.parametrize("case", list(CASES), ids=str)
def test_trace_agrees_with_real_packets(cloud: Cloud, case: Case) -> None:
    out = traced(cloud, case)
    assert out["verdict"] == CASES[case], (case, out["reason"], out["hops"])
    delivered = real(cloud, case)
    assert delivered == (out["verdict"] == "delivered"), \
        f"{case} ({cloud.transport}): trace says {out['verdict']} ({out['reason']}), " \
        f"real packets {'got through' if delivered else 'did not'}"


def test_a_routed_trace_names_the_path(cloud: Cloud) -> None:
    out = traced(cloud, Case("cli3", ip("web1"), "tcp", 80))
    kinds = [h["kind"] for h in out["hops"]]
    assert kinds == ["source", "router", "transport", "acl", "destination"], out["hops"]
    assert {"if-cli3", "nw-b", "dp-h2", "rl-r1", "nw-a", "dp-h1", "if-web1", "sg-web"} \
        <= set(out["uuids"])
    # the vna reported the VM's real ofport: the trace entered where the packet does
    port = cloud.api.get("interfaces/if-cli3")["binding"]["port_number"]
    assert port is not None
    hop = out["hops"][-1]["text"]
    web1_port = cloud.api.get("interfaces/if-web1")["binding"]["port_number"]
    assert f"delivered to if-web1 on dp-h1 (port {web1_port}," in hop


def test_the_traced_flows_are_the_ones_the_vna_installed(cloud: Cloud) -> None:
    """--flows are the vna's own flows: on the source datapath, every flow the trace hit
    before the transport (whose tunnel port number the trace makes up) is on the real
    switch, with the same cookie (a hash of the flow's whole content)."""
    out = traced(cloud, Case("cli3", ip("web1"), "tcp", 80), "--flows")
    source = out["datapaths"][0]
    assert source["datapath"] == "dp-h2"
    hit = {line.split()[0].removeprefix("cookie=") for line in source["flows"]
           if " table=80(OUTPUT) " not in line}
    assert len(hit) >= 8, source["flows"]  # CLASSIFY ... ARP_RESOLVE, L2_LOOKUP, ...
    installed = {field.split("=", 1)[1].rstrip(",") for line in cloud.flows("h2")
                 for field in line.split() if field.startswith("cookie=")}
    assert hit <= installed, f"traced but not installed: {sorted(hit - installed)}"
