"""vnctl trace's engine on model dicts built as vnmgr sends them (tests/unit/vna_kit.py):
verdicts, logical hops and the uuids on the path, for tunnel and mac2mac; and the model
read back from API-shaped lists (vnctl.trace_model)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.vna_kit import ModelBuilder, p2v_world, routed_world
from vnctl.trace import TUNNEL_OFPORT, UPSTREAM_MAC, Probe, TraceError, trace
from vnctl.trace_model import read_model


def kinds(result: Any) -> list[str]:
    return [h.kind for h in result.hops]


def test_a_routed_packet_crosses_the_router_and_the_tunnel() -> None:
    m = routed_world()
    result = trace(m.snapshot(), Probe("if-a", "10.2.0.20"))
    assert result.verdict == "delivered", result.hops
    assert kinds(result) == ["source", "router", "transport", "destination"]
    router = result.hops[1]
    assert "rl-r" in router.text and "TTL 64 -> 63" in router.text and router.datapath == "dp-1"
    assert "tunnel dp-1 (192.168.0.1) -> dp-2 (192.168.0.2)" in result.hops[2].text
    assert result.hops[3].text.startswith("delivered to if-b on dp-2")
    assert [v.datapath for v in result.visits] == ["dp-1", "dp-2"]
    assert result.visits[1].in_port == TUNNEL_OFPORT
    assert {"if-a", "nw-1", "dp-1", "rl-r", "nw-2", "if-b", "dp-2"} <= set(result.uuids)
    # both router ports are on the path in the order crossed: the one the packet enters
    # by (on nw-1), the router, the one it leaves by (on nw-2), so the page's path has no gap
    ingress, egress = m.router_port("rl-r", "nw-1"), m.router_port("rl-r", "nw-2")
    assert result.uuids == ["if-a", "nw-1", "dp-1", ingress, "rl-r", egress, "nw-2",
                            "dp-2", "if-b"]
    assert f"in port {ingress}, out port {egress}" in router.text


def test_a_packet_on_one_network_is_switched_without_a_router() -> None:
    m = routed_world()
    m.vif("c", "dp-2", "nw-1", "10.1.0.30")
    result = trace(m.snapshot(), Probe("if-a", "10.1.0.30", "udp", 53))
    assert result.verdict == "delivered"
    assert kinds(result) == ["source", "transport", "destination"]
    assert "rl-r" not in result.uuids


def test_mac2mac_follows_the_frame_to_the_datapath_owning_its_mac() -> None:
    m = routed_world()
    for dp in ("dp-1", "dp-2"):
        for nw in ("nw-1", "nw-2"):
            m.dpn(dp, nw, f"if-h{dp[-1]}")
    result = trace(m.snapshot(), Probe("if-a", "10.2.0.20", "tcp", 22), transport="mac2mac")
    assert result.verdict == "delivered", result.hops
    assert kinds(result) == ["source", "router", "transport", "destination"]
    assert "mac2mac dp-1 -> dp-2" in result.hops[2].text


def test_an_address_without_a_route_is_unroutable() -> None:
    result = trace(routed_world().snapshot(), Probe("if-a", "10.9.9.9"))
    assert result.verdict == "unroutable"
    assert "no route" in result.reason


def test_an_address_nobody_holds_on_the_own_network_gets_no_arp_answer() -> None:
    result = trace(routed_world().snapshot(), Probe("if-a", "10.1.0.99"))
    assert result.verdict == "unroutable"
    assert "nothing answers ARP for 10.1.0.99" in result.reason


def test_an_address_nobody_holds_behind_the_router_is_host_unreachable() -> None:
    result = trace(routed_world().snapshot(), Probe("if-a", "10.2.0.99"))
    assert result.verdict == "unroutable"
    assert "host unreachable" in result.reason


def test_a_ttl_of_one_expires_at_the_router() -> None:
    result = trace(routed_world().snapshot(), Probe("if-a", "10.2.0.20", ttl=1))
    assert result.verdict == "unroutable"
    assert "TTL exceeded" in result.reason


def test_an_unbound_destination_is_unroutable_and_an_unbound_source_too() -> None:
    m = routed_world()
    m.unbind("if-b")
    assert trace(m.snapshot(), Probe("if-a", "10.2.0.20")).verdict == "unroutable"
    m.unbind("if-a")
    result = trace(m.snapshot(), Probe("if-a", "10.2.0.20"))
    assert result.verdict == "unroutable" and "not bound" in result.reason


def secured(rules: str) -> ModelBuilder:
    m = routed_world()
    m.add("security_groups", "sg-web", display_name="web", description=None, rules=rules)
    m.add("interface_security_groups", "isg-b", interface_uuid="if-b",
          security_group_uuid="sg-web")
    return m


def test_a_security_group_admits_its_port_and_denies_others() -> None:
    m = secured("tcp:22:0.0.0.0/0")
    allowed = trace(m.snapshot(), Probe("if-a", "10.2.0.20", "tcp", 22))
    assert allowed.verdict == "delivered", allowed.hops
    acl = [h for h in allowed.hops if h.kind == "acl"]
    assert acl and acl[-1].datapath == "dp-2" and "allowed" in acl[-1].text
    assert "sg-web" in allowed.uuids
    denied = trace(m.snapshot(), Probe("if-a", "10.2.0.20", "tcp", 80))
    assert denied.verdict == "dropped", denied.hops
    assert "denied by the to-VM filter" in denied.reason
    assert denied.hops[-1].datapath == "dp-2"
    assert trace(m.snapshot(), Probe("if-a", "10.2.0.20")).verdict == "dropped"


def test_through_the_gateway_to_the_outside_with_snat() -> None:
    """p2v_world: a default route via 172.16.0.1 through rl-r's port on the physical
    nw-pub, owned by dp-1 (the gateway); b on dp-2 is forwarded there first."""
    m = p2v_world()
    port = m.router_port("rl-r", "nw-pub")
    m.add("translations", "tr-snat", interface_uuid=port, mode="snat", passthrough=False)
    result = trace(m.snapshot(), Probe("if-b", "8.8.8.8", "tcp", 443))
    assert result.verdict == "delivered", result.hops
    assert kinds(result) == ["source", "transport", "router", "nat", "destination"]
    assert [h.datapath for h in result.hops[2:]] == ["dp-1"] * 3
    assert result.hops[3].text == f"SNAT by {port}: 10.2.0.20 -> 172.16.0.4"
    assert result.hops[4].text == ("out of if-p1 on dp-1 to the physical network nw-pub "
                                   f"(eth_dst {UPSTREAM_MAC})")
    assert {port, "nw-pub", "if-p1", "dp-1"} <= set(result.uuids)


def test_a_ping_to_a_router_address_is_answered_by_the_router() -> None:
    result = trace(p2v_world().snapshot(), Probe("if-a", "172.16.0.4"))
    assert result.verdict == "delivered"
    assert kinds(result) == ["source", "destination"]
    assert result.hops[1].text.startswith("answered by rl-r, if-rl-r-nw-1")


@pytest.mark.parametrize("probe,field", [
    (Probe("if-nope", "10.2.0.20"), "from"),
    (Probe("if-h1", "10.2.0.20"), "from"),  # a host interface, not a vif
    (Probe("if-a", "10.2.0"), "to"),
    (Probe("if-a", "10.2.0.20", "icmp", 22), "dport"),
    (Probe("if-a", "10.2.0.20", "tcp"), "dport"),  # not a silent trace to port 0
    (Probe("if-a", "10.2.0.20", "udp"), "dport"),
    (Probe("if-a", "10.2.0.20", "sctp"), "proto"),
])
def test_bad_input_names_the_option(probe: Probe, field: str) -> None:
    with pytest.raises(TraceError) as caught:
        trace(routed_world().snapshot(), probe)
    assert caught.value.field == field


def test_json_lists_hops_verdict_uuids_and_flows() -> None:
    result = trace(routed_world().snapshot(), Probe("if-a", "10.2.0.20"))
    out = result.as_dict(flows=True)
    assert out["verdict"] == "delivered" and out["reason"] is None
    assert out["uuids"] == result.uuids
    assert [d["datapath"] for d in out["datapaths"]] == ["dp-1", "dp-2"]
    assert any("table=30(ROUTE)" in f and "DecTtl" in f for f in out["datapaths"][0]["flows"])


def api_lists(model: dict[str, dict[str, dict[str, Any]]]) -> dict[str, list[dict]]:
    """What the webapi's list endpoints answer for `model`: top-level rows (interfaces
    with their binding), join and nested rows under their parents."""
    lists: dict[str, list[dict]] = {}
    for name in ("datapaths", "networks", "mac_leases", "ip_leases", "route_links", "routes",
                 "security_groups", "network_services", "dns_services", "filters",
                 "translations"):
        lists[name] = list(model[name].values())
    claims = model["active_interfaces"].values()
    lists["interfaces"] = []
    for row in model["interfaces"].values():
        binding = None
        if row["mode"] == "vif":
            active = next((c for c in claims if c["interface_uuid"] == row["uuid"]), None)
            binding = {"state": "bound" if active else "unbound",
                       "datapath_uuid": active and active["datapath_uuid"],
                       "port_name": active and active["port_name"], "port_number": 7,
                       "detail": None, "claims": []}
        lists["interfaces"].append({**row, "binding": binding, "mac_leases": []})
    for dp in model["datapaths"]:
        lists[f"datapaths/{dp}/networks"] = [r for r in model["datapath_networks"].values()
                                             if r["datapath_uuid"] == dp]
        lists[f"datapaths/{dp}/route_links"] = []
    for sg in model["security_groups"]:
        lists[f"security_groups/{sg}/interfaces"] = [
            model["interfaces"][r["interface_uuid"]]
            for r in model["interface_security_groups"].values()
            if r["security_group_uuid"] == sg]
    return lists


def test_the_model_read_through_the_api_traces_as_the_model_itself() -> None:
    m = secured("tcp:22:0.0.0.0/0")
    lists = api_lists(m.snapshot())
    model = read_model(lambda path: lists.get(path, []))
    assert set(model["active_interfaces"]) == {"ai-if-a-dp-1", "ai-if-b-dp-2"}
    assert model["active_interfaces"]["ai-if-b-dp-2"]["state"] == "active"
    assert set(model["interface_security_groups"]) == {"isg-if-b-sg-web"}
    assert "binding" not in model["interfaces"]["if-a"]
    for dport, verdict in ((22, "delivered"), (80, "dropped")):
        assert trace(model, Probe("if-a", "10.2.0.20", "tcp", dport)).verdict == verdict
    # the ofport the vna reported is the one the trace enters at
    result = trace(model, Probe("if-a", "10.2.0.20", "tcp", 22))
    assert result.visits[0].in_port == 7
