"""`vnctl trace` as a user runs it: against a real vnmgr + vnet-webapi on SQLite (no vna,
no switch: trace needs neither), through click's CliRunner.  Exit status, text, JSON and
the --ui address; the bindings are reported to vnmgr as a vna reports them."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator

import pytest
from click.testing import CliRunner, Result

from lab.hosts import Lab
from lab.services import Services
from vnctl.api import Api
from vnctl.cli import cli


@pytest.fixture(scope="module")
def stack() -> Iterator[Services]:
    with Lab() as lab:
        services = Services(lab, extra_env={"VNET_MESSAGING_RPC_TIMEOUT_MS": "3000"})
        services.start_vnmgr()
        services.start_webapi()
        world(services)
        yield services


def world(services: Services) -> None:
    """nw-a 10.1.0.0/24 (vif if-a on dp-1) - router rl-r - nw-b 10.2.0.0/24 (if-b on dp-2,
    in sg-ssh admitting tcp 22 and icmp); underlay 192.168.0.0/24 (host interfaces .1 and .2)."""
    api = Api(services.webapi_url)
    for n in (1, 2):
        api.post("datapaths", uuid=f"dp-{n}", dpid=f"0x{n:016x}", node_id=f"vna{n}")
    api.post("networks", uuid="nw-u", ipv4_network="192.168.0.0/24", network_mode="physical")
    api.post("networks", uuid="nw-a", ipv4_network="10.1.0.0/24")
    api.post("networks", uuid="nw-b", ipv4_network="10.2.0.0/24")
    for n in (1, 2):
        api.post("interfaces", uuid=f"if-h{n}", mode="host", owner_datapath_uuid=f"dp-{n}",
                 network_uuid="nw-u", ipv4_address=f"192.168.0.{n}", port_name=f"eth{n}")
    api.post("interfaces", uuid="if-a", mode="vif", network_uuid="nw-a",
             ipv4_address="10.1.0.10", mac_address="52:54:00:00:00:0a")
    api.post("interfaces", uuid="if-b", mode="vif", network_uuid="nw-b",
             ipv4_address="10.2.0.20", mac_address="52:54:00:00:00:0b")
    api.post("route_links", uuid="rl-r", mac_address="02:00:10:00:00:01")
    for net, gw, mac in (("nw-a", "10.1.0.1", "02:00:00:00:01:01"),
                         ("nw-b", "10.2.0.1", "02:00:00:00:01:02")):
        api.post("interfaces", uuid=f"if-r{net[-1]}", mode="simulated", network_uuid=net,
                 mac_address=mac, ipv4_address=gw, enable_routing=True)
        api.post("routes", uuid=f"r-{net[-1]}", interface_uuid=f"if-r{net[-1]}", network_uuid=net,
                 ipv4_network=gw.rsplit(".", 1)[0] + ".0", route_link_uuid="rl-r")
    api.post("security_groups", uuid="sg-ssh", rules="tcp:22:0.0.0.0/0\nicmp:-1:0.0.0.0/0")
    api.post("interfaces/if-b/security_groups/sg-ssh")
    rpc = services.rpc(role="agent")  # the report a vna makes, with its key
    for dp, iface, port in (("dp-1", "if-a", 5), ("dp-2", "if-b", 6)):
        rpc.call("report", "active_interfaces", params={"datapath_uuid": dp, "ports": [
            {"interface_uuid": iface, "port_name": iface, "port_number": port}]})


def vnctl(stack: Services, *args: str, expect: int = 0) -> Result:
    result = CliRunner().invoke(cli, ["--webapi-uri", stack.webapi_url, "trace", *args])
    assert result.exit_code == expect, (args, result.output, result.exception)
    return result


def test_a_routed_ping_is_delivered(stack: Services) -> None:
    out = vnctl(stack, "--from", "if-a", "--to", "10.2.0.20").stdout
    assert "router rl-r" in out and "TTL 64 -> 63" in out
    assert "tunnel dp-1 (192.168.0.1) -> dp-2 (192.168.0.2)" in out
    assert "delivered to if-b on dp-2 (port 6" in out
    assert out.rstrip().endswith("verdict: delivered")


def test_the_destination_may_be_an_interface_and_flows_are_listed(stack: Services) -> None:
    out = vnctl(stack, "--from", "if-a", "--to", "if-b", "--proto", "tcp", "--dport", "22",
                "--flows").stdout
    assert "flows on dp-1 (in_port 5):" in out and "flows on dp-2 (in_port 65520):" in out
    assert "table=30(ROUTE)" in out and "to-VM filter (if-b, sg-ssh): allowed" in out


def test_a_port_the_security_group_does_not_admit_is_dropped(stack: Services) -> None:
    result = vnctl(stack, "--from", "if-a", "--to", "10.2.0.20", "--proto", "tcp",
                   "--dport", "80", "--json", expect=3)
    out = json.loads(result.stdout)
    assert out["verdict"] == "dropped"
    assert "denied by the to-VM filter of if-b, sg-ssh" in out["reason"]
    assert out["hops"][-1]["kind"] == "drop" and out["hops"][-1]["datapath"] == "dp-2"


def test_an_address_without_a_route_is_unroutable(stack: Services) -> None:
    result = CliRunner().invoke(cli, ["--webapi-uri", stack.webapi_url, "--json", "trace",
                                      "--from", "if-a", "--to", "10.9.9.9"])
    assert result.exit_code == 4, result.output
    out = json.loads(result.stdout)
    assert out["verdict"] == "unroutable" and "no route" in out["reason"]


def test_ui_prints_the_topology_page_address_with_the_path(stack: Services) -> None:
    out = vnctl(stack, "--from", "if-a", "--to", "10.2.0.20", "--ui").stdout
    url = next(line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("ui: "))
    assert url.startswith(f"{stack.webapi_url}/ui/#trace=")
    state = json.loads(urllib.parse.unquote(url.split("#trace=", 1)[1]))
    assert state["verdict"] == "delivered"
    # in path order, the router's port on nw-a (where the packet enters it) included
    assert [u for u in state["uuids"] if u != "sg-ssh"] == [
        "if-a", "nw-a", "dp-1", "if-ra", "rl-r", "if-rb", "nw-b", "dp-2", "if-b"]


def test_ui_of_a_dropped_trace_names_only_what_was_reached_and_the_drop(stack: Services
                                                                      ) -> None:
    out = vnctl(stack, "--from", "if-a", "--to", "10.2.0.20", "--proto", "tcp", "--dport",
                "80", "--ui", expect=3).stdout
    url = next(line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("ui: "))
    state = json.loads(urllib.parse.unquote(url.split("#trace=", 1)[1]))
    assert state["verdict"] == "dropped" and state["drop"] == "dp-2"
    # if-b's to-VM filter denied it: the page must not paint if-b as reached
    assert state["uuids"] == ["if-a", "nw-a", "dp-1", "if-ra", "rl-r", "if-rb", "nw-b", "dp-2"]


@pytest.mark.parametrize("args,message", [
    (("--from", "if-nope", "--to", "10.2.0.20"), "no interface if-nope"),
    (("--from", "if-h1", "--to", "10.2.0.20"), "not a vif"),
    (("--from", "if-a", "--to", "10.2.0"), "not an IPv4 address"),
    (("--from", "if-a", "--to", "10.2.0.20", "--dport", "22"), "--dport needs --proto tcp"),
    (("--from", "if-a", "--to", "10.2.0.20", "--proto", "sctp"), "sctp"),
    (("--from", "if-a", "--to", "10.2.0.20", "--proto", "tcp"), "--proto tcp needs --dport"),
    (("--from", "if-a", "--to", "10.2.0.20", "--proto", "udp"), "--proto udp needs --dport"),
    (("--from", "if-a", "--to", "10.2.0.20", "--proto", "tcp", "--dport", "0"), "0"),
])
def test_bad_input_is_a_usage_error(stack: Services, args: tuple[str, ...], message: str
                                    ) -> None:
    result = vnctl(stack, *args, expect=2)
    assert message in result.stderr and result.stdout == ""
