"""vnctl against a real vnmgr + vnet-webapi on SQLite, driven as a user drives it.

The stack comes from lab.services (the same processes the API tests start); vnctl
runs in-process through click's CliRunner, and once as the installed console script.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner, Result

from lab.hosts import Lab
from lab.services import Services, find_program, free_tcp_port
from vnctl import client as vnctl_client
from vnctl import datapaths
from vnctl.cli import cli
from vnctl.client import ApiFailure
from vnet.keys import AGENT


@pytest.fixture(scope="module")
def stack() -> Iterator[Services]:
    with Lab() as lab:
        services = Services(lab, extra_env={"VNET_MESSAGING_RPC_TIMEOUT_MS": "3000"})
        services.start_vnmgr()
        services.start_webapi()
        yield services


class Vnctl:
    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.runner = CliRunner()

    def run(self, *args: str, expect: int = 0) -> Result:
        result = self.runner.invoke(cli, ["--webapi-uri", self.uri, *args])
        assert result.exit_code == expect, (args, result.output, result.exception)
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json").stdout)

    def fails(self, *args: str) -> str:
        """Runs a command that must fail the API's way; returns its stderr."""
        result = self.run(*args, expect=1)
        assert result.stdout == "", result.stdout  # nothing half-printed on stdout
        return result.stderr


@pytest.fixture(scope="module")
def vnctl(stack: Services) -> Vnctl:
    return Vnctl(stack.webapi_url)


def table(text: str) -> list[dict[str, str]]:
    """Parse vnctl's table output back into rows (cells hold no spaces here)."""
    header, *lines = text.splitlines()
    return [dict(zip(header.split(), line.split(), strict=True)) for line in lines]


def test_walkthrough(vnctl: Vnctl) -> None:
    vnctl.run("datapaths", "add", "--uuid", "dp-test1", "--display-name", "test1",
              "--dpid", "0x0000aaaaaaaaaaaa", "--node-id", "vna1")
    created = vnctl.json("networks", "add", "--uuid", "nw-test1", "--display-name", "testnet1",
                         "--ipv4-network", "10.100.0.0", "--ipv4-prefix", "24",
                         "--network-mode", "virtual")
    assert (created["ipv4_network"], created["ipv4_prefix"]) == ("10.100.0.0", 24)
    vnctl.run("networks", "add", "--uuid", "nw-test2", "--ipv4-network", "192.168.50.0",
              "--ipv4-prefix", "24")
    vnctl.run("interfaces", "add", "--uuid", "if-inst1", "--mode", "vif",
              "--owner-datapath-uuid", "dp-test1", "--mac-address", "10:54:ff:00:00:01",
              "--network-uuid", "nw-test1", "--ipv4-address", "10.100.0.10",
              "--port-name", "inst1")
    vnctl.run("interfaces", "add", "--uuid", "if-inst2", "--network-uuid", "nw-test2")
    router = vnctl.json("interfaces", "add", "--uuid", "if-router1", "--mode", "simulated",
                        "--network-uuid", "nw-test1", "--mac-address", "02:00:00:00:02:01",
                        "--ipv4-address", "10.100.0.1", "--enable-routing")
    assert router["enable_routing"] is True
    vnctl.run("route_links", "add", "--uuid", "rl-1", "--mac-address", "02:00:10:00:00:01")
    route = vnctl.json("routes", "add", "--uuid", "r-1", "--interface-uuid", "if-router1",
                       "--network-uuid", "nw-test1", "--ipv4-network", "10.100.0.0",
                       "--route-link-uuid", "rl-1")
    assert route["ipv4_prefix"] == 24 and route["ingress"] is True

    vnctl.run("datapaths", "networks", "add", "dp-test1", "nw-test1",
              "--broadcast-mac-address", "08:00:27:10:03:01")
    vnctl.run("datapaths", "networks", "add", "dp-test1", "nw-test2")
    rows = table(vnctl.run("datapaths", "networks", "show", "dp-test1").stdout)
    assert [(r["network_uuid"], r["datapath_uuid"]) for r in rows] == \
        [("nw-test1", "dp-test1"), ("nw-test2", "dp-test1")]
    assert rows[0]["broadcast_mac_address"] == "08:00:27:10:03:01"
    one = vnctl.json("datapaths", "networks", "show", "dp-test1", "nw-test2")
    assert one["uuid"] == rows[1]["uuid"]
    dprl = vnctl.json("datapaths", "route_links", "add", "dp-test1", "rl-1",
                      "--mac-address", "02:00:10:00:00:02")
    assert dprl["route_link_uuid"] == "rl-1"
    assert [r["uuid"] for r in vnctl.json("datapaths", "route_links", "show", "dp-test1")] == \
        [dprl["uuid"]]

    vnctl.run("security_groups", "add", "--uuid", "sg-web", "--description", "web")
    vnctl.run("interfaces", "security_groups", "add", "if-inst1", "sg-web")
    members = vnctl.json("interfaces", "security_groups", "show", "if-inst1")
    assert [m["security_group_uuid"] for m in members] == ["sg-web"]
    vnctl.run("interfaces", "security_groups", "del", "if-inst1", "sg-web")
    assert vnctl.json("interfaces", "security_groups", "show", "if-inst1") == []

    listed = table(vnctl.run("interfaces", "show").stdout)
    assert {r["uuid"]: r["ipv4_address"] for r in listed} == {
        "if-inst1": "10.100.0.10", "if-inst2": "192.168.50.2", "if-router1": "10.100.0.1"}
    leases = vnctl.json("ip_leases", "show", "--network-uuid", "nw-test1")
    assert sorted(lease["ipv4_address"] for lease in leases) == ["10.100.0.1", "10.100.0.10"]
    shown = vnctl.run("networks", "show", "nw-test1").stdout
    assert "ipv4_network  10.100.0.0" in shown

    renamed = vnctl.json("interfaces", "modify", "if-inst1", "--display-name", "web",
                         "--no-enable-routing")
    assert (renamed["display_name"], renamed["enable_routing"]) == ("web", False)
    assert renamed["mac_address"] == "10:54:ff:00:00:01"  # modify left the rest alone

    vnctl.run("datapaths", "route_links", "del", "dp-test1", "rl-1")
    deleted = vnctl.json("datapaths", "networks", "del", "dp-test1", "nw-test1", "nw-test2")
    assert [d["network_uuid"] for d in deleted] == ["nw-test1", "nw-test2"]
    gone = vnctl.json("interfaces", "del", "if-inst1", "if-inst2")
    assert [g["uuid"] for g in gone] == ["if-inst1", "if-inst2"]
    assert "not_found" in vnctl.fails("interfaces", "show", "if-inst1")


def test_json_lists_follow_pages(vnctl: Vnctl, monkeypatch: pytest.MonkeyPatch) -> None:
    vnctl.run("networks", "add", "--uuid", "nw-pages", "--ipv4-network", "10.77.0.0")
    made = {vnctl.json("interfaces", "add", "--network-uuid", "nw-pages")["uuid"]
            for _ in range(5)}
    monkeypatch.setattr(vnctl_client, "PAGE_MAX", 2)  # five rows: three requests
    listed = vnctl.json("ip_leases", "show", "--network-uuid", "nw-pages")
    assert {row["interface_uuid"] for row in listed} == made
    # The global --json works as well as the per-command one.
    assert vnctl.json("networks", "show", "nw-pages") == \
        json.loads(vnctl.run("--json", "networks", "show", "nw-pages").stdout)


def test_api_errors_exit_1_with_message_and_field(vnctl: Vnctl) -> None:
    vnctl.run("networks", "add", "--uuid", "nw-dup", "--ipv4-network", "10.88.0.0")
    error = vnctl.fails("networks", "add", "--uuid", "nw-dup", "--ipv4-network", "10.89.0.0")
    assert "conflict" in error and "(field: uuid)" in error
    error = vnctl.fails("interfaces", "add", "--mac-address", "not-a-mac")
    assert "invalid_value" in error and "(field: mac_address)" in error
    error = vnctl.fails("routes", "add", "--interface-uuid", "if-nope", "--route-link-uuid", "x")
    assert "not_found" in error and "field:" in error
    assert "required" in vnctl.fails("datapaths", "add", "--dpid", "0x1")
    assert "nothing to modify" in vnctl.fails("networks", "modify", "nw-dup")
    # A row deleted before the failure is still reported on stdout.
    result = vnctl.run("networks", "del", "nw-dup", "nw-dup", "--json", expect=1)
    assert [row["uuid"] for row in json.loads(result.stdout)] == ["nw-dup"]
    assert "not_found" in result.stderr
    # Click's own usage errors keep click's status 2.
    vnctl.run("ip_leases", "modify", "il-x", expect=2)
    vnctl.run("networks", "add", "--ipv4-prefix", "many", expect=2)
    repeated = vnctl.run("security_groups", "add", "--rules", "tcp:22:0.0.0.0/0", "--rules",
                         "udp:53:0.0.0.0/0", expect=2)
    assert "given 2 times" in repeated.stderr


def test_unreachable_webapi(monkeypatch: pytest.MonkeyPatch) -> None:
    uri = f"http://127.0.0.1:{free_tcp_port()}"
    monkeypatch.setenv("VNCTL_WEBAPI_URI", uri)
    result = CliRunner().invoke(cli, ["networks", "show"])
    assert result.exit_code == 1
    assert f"cannot reach the webapi at {uri}" in result.stderr
    assert "VNCTL_WEBAPI_URI" in result.stderr


def test_datapaths_show_reports_vna_lag(stack: Services, vnctl: Vnctl) -> None:
    vnctl.run("datapaths", "add", "--uuid", "dp-lag", "--dpid", "0x00000000000000aa",
              "--node-id", "vna-lag")
    vnctl.run("datapaths", "add", "--uuid", "dp-quiet", "--dpid", "0x00000000000000bb",
              "--node-id", "vna-quiet")
    # Report as a vna would, three events behind vnmgr's current sequence number.
    rpc = stack.rpc(5000, role=AGENT)  # as a vna reports, with its key
    seq = rpc.call("health")["seq"]
    lost = {"interface_uuid": "if-far", "network_uuid": "nw-b", "datapath_uuid": "dp-quiet",
            "reason": "mac2mac: no datapath_network for nw-b on dp-lag"}
    rpc.call("agent_status", params={"node_id": "vna-lag", "connected": True,
                                     "seq": seq - 3, "applied_seq": seq - 3, "flows": 7,
                                     "unreachable": [lost], "unreachable_total": 3})
    rows = {r["uuid"]: r for r in table(vnctl.run("datapaths", "show").stdout)}
    assert (rows["dp-lag"]["vna"], rows["dp-lag"]["lag"]) == ("connected", "3")
    assert rows["dp-lag"]["unreachable"] == "if-far(nw-b),+2"  # 2 more not listed
    assert (rows["dp-quiet"]["vna"], rows["dp-quiet"]["lag"]) == ("none", "-")
    shown = vnctl.json("datapaths", "show", "dp-lag")
    assert shown["agent"]["lag"] == 3 and shown["agent"]["flows"] == 7
    assert shown["agent"]["unreachable"] == [lost]
    assert "no datapath_network for nw-b" in vnctl.run("datapaths", "show", "dp-lag").stdout
    assert vnctl.json("datapaths", "show", "dp-quiet")["agent"] is None


def test_datapaths_show_without_status_route(capsys: pytest.CaptureFixture[str]) -> None:
    """An older webapi without the status route: the rows as they are, plus a note."""

    class NoStatus:
        def call(self, method: str, path: str) -> Any:
            raise ApiFailure(404, {"error": "not_found", "message": "no such route"})

    rows = datapaths.enrich(NoStatus(), [{"uuid": "dp-1"}, {"uuid": "dp-2"}])  # type: ignore
    assert rows == [{"uuid": "dp-1"}, {"uuid": "dp-2"}]
    assert datapaths.display(rows[0]) == {"vna": "?", "lag": "?", "report_age": "?",
                                         "unreachable": "?"}
    assert "/status" in capsys.readouterr().err


def test_console_script(stack: Services) -> None:
    result = subprocess.run([find_program("vnctl"), "--json", "networks", "show"],
                            env={"VNCTL_WEBAPI_URI": stack.webapi_url + "/api/1.0"},
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert isinstance(json.loads(result.stdout), list)


@pytest.mark.parametrize("option", [["--timeout", "-1"], ["--timeout", "0"],
                                    ["--timeout", "nan"], ["--webapi-uri", "127.0.0.1:9090"],
                                    # no hanging --timeout seconds on a scheme urllib
                                    # speaks but the webapi does not
                                    ["--webapi-uri", "ftp://127.0.0.1:9090"],
                                    ["--webapi-uri", "file:///etc/passwd"]])
def test_bad_global_options_are_usage_errors(option: list[str]) -> None:
    result = CliRunner().invoke(cli, [*option, "networks", "show"])
    assert result.exit_code == 2, result.output
    assert option[0] in result.output


def test_network_services_and_dns_records(vnctl: Vnctl) -> None:
    vnctl.run("networks", "add", "--uuid", "nw-svc", "--ipv4-network", "10.77.0.0",
              "--domain-name", "example")
    vnctl.run("interfaces", "add", "--uuid", "if-dns", "--mode", "simulated",
              "--network-uuid", "nw-svc", "--ipv4-address", "10.77.0.53")
    vnctl.run("network_services", "add", "--uuid", "ns-dns", "--interface-uuid", "if-dns",
              "--type", "dns")
    vnctl.run("dns_services", "add", "--uuid", "dnss-1", "--network-service-uuid", "ns-dns",
              "--public-dns", "192.0.2.53")
    record = vnctl.json("dns_services", "dns_records", "add", "dnss-1", "--uuid", "dnsr-vm3",
                        "--name", "vm3", "--ipv4-address", "10.77.0.3")
    assert (record["dns_service_uuid"], record["ttl"]) == ("dnss-1", 60)
    listed = vnctl.json("dns_services", "dns_records", "show", "dnss-1")
    assert [r["uuid"] for r in listed] == ["dnsr-vm3"]
    assert "not found" in vnctl.fails("dns_services", "dns_records", "del", "dnss-1", "dnsr-x")
    vnctl.run("dns_services", "dns_records", "del", "dnss-1", "dnsr-vm3")
    assert "still used by network services" in vnctl.fails("interfaces", "del", "if-dns")
    vnctl.run("network_services", "del", "ns-dns")
    assert vnctl.json("dns_services", "show") == []


def test_security_group_membership_both_ways_and_filters(vnctl: Vnctl) -> None:
    vnctl.run("networks", "add", "--uuid", "nw-fil", "--ipv4-network", "10.78.0.0")
    vnctl.run("interfaces", "add", "--uuid", "if-fil", "--network-uuid", "nw-fil",
              "--enable-filtering", "--ingress-filtering-enabled")
    assert vnctl.json("interfaces", "show", "if-fil")["enable_filtering"] is True
    vnctl.run("security_groups", "add", "--uuid", "sg-fil", "--rules", "tcp:22:sg-fil")
    row = vnctl.json("security_groups", "interfaces", "add", "sg-fil", "if-fil")
    assert (row["interface_uuid"], row["security_group_uuid"]) == ("if-fil", "sg-fil")
    assert [r["uuid"] for r in vnctl.json("security_groups", "interfaces", "show", "sg-fil")] \
        == ["if-fil"]
    assert "uuid" in table(vnctl.run("security_groups", "interfaces", "show", "sg-fil").stdout)[0]
    assert vnctl.json("security_groups", "interfaces", "show", "sg-fil", "if-fil") == row
    assert "already added" in vnctl.fails("interfaces", "security_groups", "add", "if-fil",
                                          "sg-fil")
    vnctl.run("interfaces", "security_groups", "del", "if-fil", "sg-fil")
    vnctl.run("security_groups", "interfaces", "add", "sg-fil", "if-fil")
    vnctl.run("security_groups", "interfaces", "del", "sg-fil", "if-fil")
    assert "rules" in vnctl.fails("security_groups", "modify", "sg-fil", "--rules", "nonsense")
    vnctl.run("interfaces", "add", "--uuid", "if-fil2", "--network-uuid", "nw-fil")
    both = vnctl.json("security_groups", "interfaces", "add", "sg-fil", "if-fil", "if-fil2")
    assert [r["interface_uuid"] for r in both] == ["if-fil", "if-fil2"]
    vnctl.run("security_groups", "interfaces", "del", "sg-fil", "if-fil", "if-fil2")

    vnctl.run("filters", "add", "--uuid", "fil-1", "--interface-uuid", "if-fil",
              "--mode", "static")
    assert vnctl.json("filters", "modify", "fil-1", "--ingress-passthrough")[
        "ingress_passthrough"] is True
    static = vnctl.json("filters", "static", "add", "fil-1", "--protocol", "tcp",
                        "--ipv4-address", "0.0.0.0/0", "--port-number", "0", "--passthrough")
    assert (static["filter_uuid"], static["port_number"], static["passthrough"]) == (
        "fil-1", 0, True)
    arp = vnctl.json("filters", "static", "add", "fil-1", "--protocol", "arp",
                     "--no-passthrough")
    assert [r["uuid"] for r in vnctl.json("filters", "static", "show", "fil-1")] == [
        static["uuid"], arp["uuid"]]
    assert "not_found" in vnctl.fails("filters", "static", "del", "fil-1", "--protocol", "udp",
                                      "--passthrough")
    deleted = vnctl.json("filters", "static", "del", "fil-1", "--protocol", "tcp",
                         "--port-number", "0", "--passthrough")
    assert [r["uuid"] for r in deleted] == [static["uuid"]]
    vnctl.run("filters", "static", "del", "fil-1", arp["uuid"])
    vnctl.run("filters", "del", "fil-1")
    assert vnctl.json("filters", "show") == []


def test_translations_static_addresses_gateways(vnctl: Vnctl) -> None:
    """OpenVNet's vnctl names: translations add/show/del and `translations
    static_address add/show/del`; routes --ipv4-gateway, --enable-route-translation."""
    vnctl.run("datapaths", "add", "--uuid", "dp-nat", "--dpid", "0x0000eeeeeeeeeeee",
              "--node-id", "wanedge")
    vnctl.run("networks", "add", "--uuid", "nw-glo", "--ipv4-network", "10.210.0.0",
              "--network-mode", "physical")
    vnctl.run("networks", "add", "--uuid", "nw-priv", "--ipv4-network", "10.101.0.0")
    port = vnctl.json("interfaces", "add", "--uuid", "if-glo", "--mode", "simulated",
                      "--network-uuid", "nw-glo", "--owner-datapath-uuid", "dp-nat",
                      "--enable-routing", "--enable-route-translation")
    assert port["enable_route_translation"] is True
    vnctl.run("route_links", "add", "--uuid", "rl-nat")
    route = vnctl.json("routes", "add", "--uuid", "r-glo", "--interface-uuid", "if-glo",
                       "--route-link-uuid", "rl-nat", "--ipv4-network", "0.0.0.0",
                       "--ipv4-prefix", "0", "--ipv4-gateway", "10.210.0.1")
    assert route["ipv4_gateway"] == "10.210.0.1"
    assert vnctl.json("routes", "modify", "r-glo", "--ipv4-gateway", "")["ipv4_gateway"] is None
    vnctl.run("translations", "add", "--uuid", "tr-nat", "--interface-uuid", "if-glo",
              "--mode", "static_address")
    assert vnctl.json("translations", "show", "tr-nat")["passthrough"] is False
    assert "modify" not in vnctl.run("translations", "--help").stdout
    static = vnctl.json("translations", "static_address", "add", "tr-nat",
                        "--ingress-ipv4-address", "10.210.0.104",
                        "--egress-ipv4-address", "10.101.0.11", "--route-link-uuid", "rl-nat")
    assert (static["translation_uuid"], static["leased"]) == ("tr-nat", True)
    shown = table(vnctl.run("translations", "static_address", "show", "tr-nat").stdout)
    assert shown[0]["ingress_ipv4_address"] == "10.210.0.104"
    assert "ingress_network_uuid" not in shown[0]
    assert "ingress_ipv4_address" in vnctl.fails(
        "translations", "static_address", "add", "tr-nat", "--ingress-ipv4-address",
        "10.210.0.104", "--egress-ipv4-address", "10.101.0.12")
    assert "not_found" in vnctl.fails("translations", "static_address", "del", "tr-nat",
                                      "--ingress-ipv4-address", "10.210.0.104",
                                      "--egress-ipv4-address", "10.101.0.12")
    deleted = vnctl.json("translations", "static_address", "del", "tr-nat",
                         "--ingress-ipv4-address", "10.210.0.104",
                         "--egress-ipv4-address", "10.101.0.11")
    assert [r["uuid"] for r in deleted] == [static["uuid"]]
    vnctl.run("translations", "del", "tr-nat")
    assert vnctl.json("translations", "show") == []


def test_health_names_disconnected_datapaths_and_exits_1(stack: Services, vnctl: Vnctl) -> None:
    vnctl.run("datapaths", "add", "--uuid", "dp-health", "--dpid", "0x00000000000000cc",
              "--node-id", "vna-health")
    shown = vnctl.run("health", expect=1).stdout
    assert "degraded" in shown and "dp-health" in shown
    assert "dp-health" in json.loads(vnctl.run("health", "--json", expect=1).stdout)[
        "disconnected_datapaths"]
    # A vna reporting its switch connected as dp-health: vnmgr marks it connected.
    rpc = stack.rpc(role="agent")
    rpc.call("agent_status", params={"node_id": "vna-health", "connected": True,
                                     "datapath_uuid": "dp-health", "seq": 0})
    deadline = time.monotonic() + 3
    while not vnctl.json("datapaths", "show", "dp-health")["is_connected"]:
        assert time.monotonic() < deadline, "dp-health not marked connected"
        time.sleep(0.1)
    # Other tests' datapaths may still make it degraded (exit 1), never this one.
    result = vnctl.runner.invoke(cli, ["--webapi-uri", vnctl.uri, "health", "--json"])
    assert "dp-health" not in json.loads(result.stdout)["disconnected_datapaths"]
