"""mac2mac with partial joins: each network joined only where its VMs live (OpenVNet's
way), routed traffic carried with the datapath_route_link MACs; what no transport can
reach is reported, never lost silently."""

from __future__ import annotations

import logging

import pytest
from vna_kit import TUNNEL_PORT, Agent, ModelBuilder, agent_on, gw_mac, ip_packet

from vna.announce import announcements
from vna.features.transport import FEATURE as TRANSPORT
from vna.features.transport import KIND_INGRESS_LINK, Unreachable, unreachable
from vna.reachability import Reachability
from vna.view import LocalBinding

UNDERLAY = 10  # the host interface's ofport on both datapaths


def partial_world(dprls: bool = True) -> ModelBuilder:
    """nw-1 10.1.0.0/24 (vif a on dp-1) - router rl-r - nw-2 10.2.0.0/24 (vif b on dp-2);
    dp-1 joins only nw-1, dp-2 only nw-2; each datapath has a MAC for rl-r."""
    m = ModelBuilder()
    dp1, dp2 = m.datapath("1"), m.datapath("2")
    under = m.network("underlay", "192.168.0.0/24", mode="physical")
    h1, h2 = m.host("h1", dp1, under, "192.168.0.1"), m.host("h2", dp2, under, "192.168.0.2")
    nw1, nw2 = m.network("1", "10.1.0.0/24"), m.network("2", "10.2.0.0/24")
    m.vif("a", dp1, nw1, "10.1.0.10")
    m.vif("b", dp2, nw2, "10.2.0.20")
    link = m.router("r", [(nw1, "10.1.0.1"), (nw2, "10.2.0.1")])
    m.dpn(dp1, nw1, h1)
    m.dpn(dp2, nw2, h2)
    if dprls:
        m.dprl(dp1, link, h1)
        m.dprl(dp2, link)  # no interface: the first host interface carries it
    return m


def on(m: ModelBuilder, dp: str, ports: dict[str, int], transport: str = "mac2mac") -> Agent:
    return agent_on(m, dp, {**ports, f"if-h{dp}": UNDERLAY}, transport=transport)


def dprl_mac(m: ModelBuilder, dp: str, link: str) -> str:
    return m.model["datapath_route_links"][f"dprl-{dp}-{link}"]["mac_address"]


def cross(m: ModelBuilder, src: tuple[str, str, int], dst: tuple[str, str, int],
          gateway: str, ips: tuple[str, str], link: str, hops: int) -> tuple[dict, dict]:
    """Route a packet from vif (dp, name, port) `src` through `gateway` (the router port
    MAC) to vif `dst` on another datapath; checks the wire carries `link`'s dprl MACs
    and the receiver delivers it to dst's port with one TTL per router.  Returns (wire,
    delivered)."""
    (sdp, sname, sport), (ddp, dname, dport) = src, dst
    sender = on(m, sdp, {f"if-{sname}": sport})
    receiver = on(m, ddp, {f"if-{dname}": dport})
    packet = ip_packet(sport, m.mac_of(f"if-{sname}"), gateway, *ips)
    port, wire = sender.send(packet).only()
    assert port == UNDERLAY and wire["ip_ttl"] == 64 - hops
    assert (wire["eth_src"], wire["eth_dst"]) == (dprl_mac(m, f"dp-{sdp}", link),
                                                  dprl_mac(m, f"dp-{ddp}", link))
    port, got = receiver.send(dict(wire, in_port=UNDERLAY)).only()
    assert port == dport and got["ip_ttl"] == 64 - hops
    assert got["eth_dst"] == m.mac_of(f"if-{dname}")
    assert unreachable(sender.view()) == [] and unreachable(receiver.view()) == []
    return wire, got


def test_routed_packet_crosses_with_the_route_link_macs_and_is_restored():
    m = partial_world()
    _, got = cross(m, ("1", "a", 1), ("2", "b", 8), gw_mac(m, "rl-r", "nw-1"),
                   ("10.1.0.10", "10.2.0.20"), "rl-r", hops=1)
    assert got["eth_src"] == gw_mac(m, "rl-r", "nw-2")


def test_the_reverse_direction_too():
    m = partial_world()
    _, got = cross(m, ("2", "b", 8), ("1", "a", 1), gw_mac(m, "rl-r", "nw-2"),
                   ("10.2.0.20", "10.1.0.10"), "rl-r", hops=1)
    assert got["eth_src"] == gw_mac(m, "rl-r", "nw-1")


def test_a_full_join_keeps_the_datapath_network_encoding():
    m = partial_world()
    m.dpn("dp-1", "nw-2", "if-h1")
    sender = on(m, "1", {"if-a": 1})
    packet = ip_packet(1, m.mac_of("if-a"), gw_mac(m, "rl-r", "nw-1"), "10.1.0.10", "10.2.0.20")
    _, wire = sender.send(packet).only()
    dpns = m.model["datapath_networks"]
    assert wire["eth_src"] == dpns["dpn-dp-1-nw-2"]["broadcast_mac_address"]
    assert wire["eth_dst"] == dpns["dpn-dp-2-nw-2"]["broadcast_mac_address"]


def test_receiver_accepts_only_what_the_router_delivers_to_a_local_vif():
    m = partial_world()
    m.vif("b2", "dp-1", "nw-2", "10.2.0.30")  # on nw-2 but on dp-1
    receiver = on(m, "2", {"if-b": 8})
    mine = dprl_mac(m, "dp-2", "rl-r")
    base = ip_packet(UNDERLAY, dprl_mac(m, "dp-1", "rl-r"), mine, "10.1.0.10", "10.2.0.20")
    assert receiver.send(base).ports == [8]
    assert receiver.send(dict(base, ipv4_dst="10.2.0.30")).dropped  # lives on dp-1
    assert receiver.send(dict(base, ipv4_dst="10.9.0.1")).dropped  # no route
    assert receiver.send(dict(base, eth_dst="0e:00:00:99:99:99")).dropped  # not our MAC
    assert receiver.send(dict(base, in_port=3)).dropped  # not the underlay port


def test_without_route_links_the_loss_is_reported_and_tunnel_mode_just_works():
    m = partial_world(dprls=False)
    sender = on(m, "1", {"if-a": 1})
    packet = ip_packet(1, m.mac_of("if-a"), gw_mac(m, "rl-r", "nw-1"), "10.1.0.10", "10.2.0.20")
    assert sender.send(packet).dropped
    [lost] = unreachable(sender.view())
    assert (lost.interface_uuid, lost.network_uuid, lost.datapath_uuid) == ("if-b", "nw-2",
                                                                           "dp-2")
    assert "no datapath_network for nw-2 on dp-1" in lost.reason
    assert "datapath_route_link" in lost.reason
    tunnel = on(m, "1", {"if-a": 1}, transport="tunnel")
    port, out = tunnel.send(packet).only()
    assert port == TUNNEL_PORT and out["tun_ipv4_dst"] == "192.168.0.2"
    assert unreachable(tunnel.view()) == []


def test_a_route_link_on_one_datapath_only_is_not_enough():
    m = partial_world(dprls=False)
    m.dprl("dp-1", "rl-r", "if-h1")
    sender = on(m, "1", {"if-a": 1})
    assert [u.interface_uuid for u in unreachable(sender.view())] == ["if-b"]
    m.dprl("dp-2", "rl-r")
    assert unreachable(on(m, "1", {"if-a": 1}).view()) == []


def test_no_underlay_port_and_no_tunnel_address_are_reported():
    m = partial_world()
    detached = agent_on(m, "1", {"if-a": 1}, transport="mac2mac")  # host port not attached
    [lost] = unreachable(detached.view())
    assert lost.interface_uuid == "if-b" and "underlay port" in lost.reason
    m.delete("ip_leases", next(u for u, r in m.model["ip_leases"].items()
                               if r["interface_uuid"] == "if-h2"))
    [lost] = unreachable(on(m, "1", {"if-a": 1}, transport="tunnel").view())
    assert lost.interface_uuid == "if-b" and "dp-2 has no underlay address" in lost.reason


@pytest.fixture
def chain() -> ModelBuilder:
    """nw1 - r1 - nw2 - r2 - nw3: a on dp-1 (nw1), c on dp-2 (nw3); dp-1 joins only nw1,
    dp-2 only nw3, nobody joins nw2; both datapaths have a MAC for both routers."""
    m = ModelBuilder()
    dp1, dp2 = m.datapath("1"), m.datapath("2")
    under = m.network("underlay", "192.168.0.0/24", mode="physical")
    h1, h2 = m.host("h1", dp1, under, "192.168.0.1"), m.host("h2", dp2, under, "192.168.0.2")
    nw1, nw2, nw3 = (m.network(str(i), f"10.{i}.0.0/24") for i in (1, 2, 3))
    m.vif("a", dp1, nw1, "10.1.0.10")
    m.vif("c", dp2, nw3, "10.3.0.30")
    r1 = m.router("r1", [(nw1, "10.1.0.1"), (nw2, "10.2.0.1")])
    r2 = m.router("r2", [(nw2, "10.2.0.2"), (nw3, "10.3.0.1")])
    m.route(r1, m.router_port(r1, nw2), nw2, "10.3.0.0/24")
    m.route(r2, m.router_port(r2, nw2), nw2, "10.1.0.0/24")
    m.dpn(dp1, nw1, h1)
    m.dpn(dp2, nw3, h2)
    for dp in (dp1, dp2):
        for link in (r1, r2):
            m.dprl(dp, link)
    return m


def test_router_chain_uses_the_last_routers_link(chain):
    m = chain
    wire, got = cross(m, ("1", "a", 1), ("2", "c", 5), gw_mac(m, "rl-r1", "nw-1"),
                      ("10.1.0.10", "10.3.0.30"), "rl-r2", hops=2)
    assert got["eth_src"] == gw_mac(m, "rl-r2", "nw-3")
    # r1 does not deliver onto nw3 itself: a frame on r1's link for c is not accepted
    receiver = on(m, "2", {"if-c": 5})
    assert receiver.send(dict(wire, in_port=UNDERLAY,
                              eth_dst=dprl_mac(m, "dp-2", "rl-r1"))).dropped


def test_router_chain_return_path(chain):
    m = chain
    _, got = cross(m, ("2", "c", 5), ("1", "a", 1), gw_mac(m, "rl-r2", "nw-3"),
                   ("10.3.0.30", "10.1.0.10"), "rl-r1", hops=2)
    assert got["eth_src"] == gw_mac(m, "rl-r1", "nw-1")


def test_announcements_include_the_route_link_macs():
    m = partial_world()
    frames = announcements(on(m, "1", {"if-a": 1}).view())
    sources = {frame[6:12].hex(":") for _port, frame in frames}
    assert dprl_mac(m, "dp-1", "rl-r") in sources
    assert {port for port, _ in frames} == {UNDERLAY}


def test_status_report_and_one_warning_per_interface(caplog):
    m = partial_world(dprls=False)
    tracker = Reachability()
    view = Agent(m.snapshot(), LocalBinding("dp-1", "mac2mac", {"if-a": 1, "if-h1": 10})).view()
    with caplog.at_level(logging.WARNING, logger="vna.reachability"):
        report = tracker.report(view)
        tracker.report(view)
        tracker.report(Agent(m.snapshot(), view.binding).view())  # same facts, new view
    assert report["unreachable_total"] == 1
    assert report["unreachable"] == [vars(Unreachable("if-b", "nw-2", "dp-2",
                                                      unreachable(view)[0].reason))]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "if-b" in warnings[0].getMessage()
    assert tracker.report(None) == {"unreachable": [], "unreachable_total": 0}


# --- the transport rule alone keeps these flows exact (targeted; the randomized churn
# in test_vna_incremental.py covers the rest) ------------------------------------------
def transport_only(m: ModelBuilder, dp: str, ports: dict[str, int]) -> Agent:
    return agent_on(m, dp, {**ports, f"if-h{dp}": UNDERLAY}, features=[TRANSPORT],
                    transport="mac2mac")


def test_a_new_route_reshapes_the_route_link_receive_flows():
    m = partial_world()
    agent = transport_only(m, "2", {"if-b": 8})
    m.vif("far", "dp-2", "nw-2", "10.9.0.5")  # outside nw-2's subnet: needs a route
    agent.sync(m.snapshot())
    wire = ip_packet(UNDERLAY, dprl_mac(m, "dp-1", "rl-r"), dprl_mac(m, "dp-2", "rl-r"),
                     "10.1.0.10", "10.9.0.5")
    assert all(f.kind != KIND_INGRESS_LINK or "10.9" not in repr(f.match)
               for f in agent.desired.flows().values())
    m.route("rl-r", m.router_port("rl-r", "nw-2"), "nw-2", "10.9.0.0/16")
    agent.sync(m.snapshot())
    assert agent.desired.flows() == agent.full()
    assert ("route_link", "rl-r") in agent.last_dirty
    assert agent.send(dict(wire, ipv4_dst="10.9.0.5")).dropped  # RX_DST: no port for it
    assert agent.desired.conflicts() == []


def test_our_route_link_port_and_rows_are_read_by_the_rule():
    m = partial_world(dprls=False)
    m.dprl("dp-2", "rl-r")
    agent = transport_only(m, "1", {"if-a": 1})
    assert unreachable(agent.view())
    m.dprl("dp-1", "rl-r", "if-a")  # its underlay port: an odd but legal choice
    agent.sync(m.snapshot())
    assert agent.desired.flows() == agent.full() and not unreachable(agent.view())
    agent.rebind(LocalBinding("dp-1", "mac2mac", {"if-a": 2, "if-h1": UNDERLAY},
                              TUNNEL_PORT))
    assert agent.desired.flows() == agent.full()
    assert {("route_link", "rl-r"), ("interface", "if-b")} <= agent.last_dirty


def test_only_what_a_local_vif_could_address_is_reported():
    m = partial_world(dprls=False)
    m.datapath("3")
    m.host("h3", "dp-3", "nw-underlay", "192.168.0.3")
    assert unreachable(on(m, "3", {}).view()) == []  # no VM there: nothing to report
    m.vif("x", "dp-3", m.network("3", "10.3.0.0/24"), "10.3.0.5")  # not routed to nw-1/2
    assert unreachable(on(m, "3", {"if-x": 4}).view()) == []
    m.vif("y", "dp-3", "nw-1", "10.1.0.99")  # nw-1 is routed to nw-2: both count now
    assert {u.interface_uuid for u in unreachable(on(m, "3", {"if-y": 5}).view())} == {
        "if-a", "if-b"}
