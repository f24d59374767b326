"""A fragmented echo to a gateway (`ping -s 3000 <gateway>`): the fragments are punted
through the vif's meter, reassembled by the gateway feature's handler and answered with
the full data (RFC 1122 3.2.2.6), fragmented to the largest fragment received.

Frames are real: built and parsed with os_ken.lib.packet, run through the desired flows
and the handler by vna_kit.punt_replies.
"""

from __future__ import annotations

import random
import shutil
import subprocess

import pytest
import vna_kit as kit
from os_ken.lib.packet import ethernet, icmp, ipv4, packet, packet_utils, udp
from test_vna_actions import FakeDatapath

from vna import ipfrag
from vna.actions import Controller
from vna.features import gateway
from vna.features.gateway import KIND_GATEWAY, KIND_GATEWAY_FRAGMENT
from vna.features.routing import KIND_HOST_UNREACH, KIND_ROUTE
from vna.flowsim import Outcome, Pipeline
from vna.ofmsg import to_flow_mod
from vna.pipeline import ETH_IPV4, Prio, Table
from vna.punt import PacketIn, PacketOut, PuntStats, punt_actions

VM_PORT = 3
A_IP, GW_IP = "10.1.0.10", "10.1.0.1"
DATA = bytes(range(256)) * 11 + bytes(range(184))  # 3000 bytes, as `ping -s 3000`
IDENT, ECHO_ID = 0x4242, 0x77


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """A fresh reassembly buffer for each test, on a clock the test moves."""
    clock = Clock()
    monkeypatch.setattr(gateway, "REASSEMBLY", ipfrag.Reassembler(clock=clock))
    return clock


@pytest.fixture(params=["tunnel", "mac2mac"])
def world(request: pytest.FixtureRequest, clock: Clock) -> tuple[kit.ModelBuilder, kit.Agent]:
    m = kit.routed_world()
    for dp, host in (("dp-1", "if-h1"), ("dp-2", "if-h2")):
        for network in ("nw-1", "nw-2"):
            m.dpn(dp, network, host)
    return m, kit.agent_on(m, "1", {"if-a": VM_PORT, "if-h1": 50}, transport=request.param)


def echo_request(data: bytes = DATA, seq: int = 1, type_: int = icmp.ICMP_ECHO_REQUEST) -> bytes:
    """The ICMP message (header + data) a VM's ping sends, checksum included (another
    type_ with the same body: an echo reply, or raw data for unregistered types)."""
    body = (icmp.echo(id_=ECHO_ID, seq=seq, data=data)
            if type_ in (icmp.ICMP_ECHO_REQUEST, icmp.ICMP_ECHO_REPLY) else bytes(4) + data)
    message = icmp.icmp(type_=type_, code=0, csum=0, data=body)
    return bytes(message.serialize(bytearray(), None))


def ip_frame(m: kit.ModelBuilder, payload: bytes, offset: int, more: bool, dst: str = GW_IP,
             eth_dst: str | None = None, proto: int = 1, ident: int = IDENT) -> bytes:
    frame = packet.Packet()
    frame.add_protocol(ethernet.ethernet(dst=eth_dst or kit.gw_mac(m, "rl-r", "nw-1"),
                                         src=m.mac_of("if-a"), ethertype=ETH_IPV4))
    frame.add_protocol(ipv4.ipv4(src=A_IP, dst=dst, proto=proto, ttl=64, identification=ident,
                                 flags=1 if more else 0, offset=offset // 8))
    frame.add_protocol(payload)
    frame.serialize()
    return bytes(frame.data)


def fragments(m: kit.ModelBuilder, message: bytes, mtu: int = 1500, **kw) -> list[bytes]:
    """`message` sent as a VM's stack does: IP fragments of at most `mtu` bytes."""
    per = (mtu - 20) // 8 * 8
    return [ip_frame(m, message[o:o + per], o, o + per < len(message), **kw)
            for o in range(0, len(message), per)]


def send(agent: kit.Agent, frames: list[bytes], stats: PuntStats | None = None
         ) -> tuple[list[Outcome], list[PacketOut]]:
    outcomes, replies = [], []
    for frame in frames:
        outcome, answered = kit.punt_replies(agent, frame, VM_PORT, stats)
        outcomes.append(outcome)
        replies += answered
    return outcomes, replies


def reassemble_reply(m: kit.ModelBuilder, replies: list[PacketOut], src: str = GW_IP
                     ) -> tuple[icmp.icmp, list]:
    """Check each reply frame (addresses, header checksum, 8-octet offsets) and return
    the reassembled ICMP message and the frames' IPv4 headers."""
    gw, a = kit.gw_mac(m, "rl-r", "nw-1"), m.mac_of("if-a")
    headers, parts = [], {}
    for reply in replies:
        assert reply.port == VM_PORT  # out of the port the request came in
        eth, _, rest = ethernet.ethernet.parser(reply.data)
        ip, _, data = ipv4.ipv4.parser(rest)
        assert (eth.src, eth.dst, eth.ethertype) == (gw, a, ETH_IPV4)
        assert (ip.src, ip.dst, ip.proto, ip.ttl) == (src, A_IP, 1, 64)
        assert packet_utils.checksum(rest[:20]) == 0 and ip.total_length == 20 + len(data)
        headers.append(ip)
        parts[ip.offset * 8] = bytes(data)
    assert [h.flags for h in headers] == [1] * (len(headers) - 1) + [0]
    assert len({h.identification for h in headers}) == 1
    message, offset = b"", 0
    for off in sorted(parts):
        assert off == offset, "a hole or an overlap in the reply"
        message += parts[off]
        offset += len(parts[off])
    assert packet_utils.checksum(message) == 0, "ICMP checksum over the full data"
    reply, _, _ = icmp.icmp.parser(message)
    return reply, headers


def assert_full_echo_reply(m: kit.ModelBuilder, replies: list[PacketOut], mtu: int,
                           seq: int = 1) -> None:
    reply, headers = reassemble_reply(m, replies)
    assert (reply.type, reply.code) == (icmp.ICMP_ECHO_REPLY, 0)
    assert (reply.data.id, reply.data.seq, reply.data.data) == (ECHO_ID, seq, DATA)
    # what fit on the way in: the largest request fragment, data in 8-octet units
    assert max(h.total_length for h in headers) == 20 + (mtu - 20) // 8 * 8
    assert len(headers) == len(fragments(kit.routed_world(), echo_request(), mtu))


# ------------------------------------------------------------------ answered

@pytest.mark.parametrize("mtu", [1500, 1450, 576])
def test_a_fragmented_echo_to_the_gateway_gets_the_full_data_back(world, mtu) -> None:
    m, agent = world
    stats = PuntStats()
    frames = fragments(m, echo_request(), mtu)
    outcomes, replies = send(agent, frames, stats)
    for outcome in outcomes:  # every fragment, the first one included, through the meter
        assert outcome.meters == [VM_PORT] and outcome.outputs == []
        assert [c for c, _ in outcome.punts] == [outcome.trace[-1].cookie]
        assert outcome.trace[-1].kind == KIND_GATEWAY_FRAGMENT
        assert outcome.trace[-1].priority == Prio.GATEWAY_FRAGMENT
    assert_full_echo_reply(m, replies, mtu)
    assert stats.handled == {"gateway": len(frames)} and stats.sent == len(replies)
    assert len(gateway.REASSEMBLY) == 0 and gateway.REASSEMBLY.bytes_held == 0


def test_a_fragmented_echo_to_the_routers_other_address_is_answered_from_it(world) -> None:
    m, agent = world
    gw = kit.gw_mac(m, "rl-r", "nw-1")
    outcomes, replies = send(agent, fragments(m, echo_request(), dst="10.2.0.1", eth_dst=gw))
    assert all(o.meters == [VM_PORT] and o.outputs == [] for o in outcomes)
    reply, _ = reassemble_reply(m, replies, src="10.2.0.1")
    assert (reply.type, reply.data.data) == (icmp.ICMP_ECHO_REPLY, DATA)


def test_fragments_out_of_order_are_answered_when_the_last_one_arrives(world) -> None:
    m, agent = world
    frames = fragments(m, echo_request(), 576)
    shuffled = random.Random(9).sample(frames, len(frames))
    for frame in shuffled[:-1]:
        assert send(agent, [frame])[1] == []
    assert_full_echo_reply(m, send(agent, shuffled[-1:])[1], 576)


def test_three_pings_in_a_row_are_three_full_replies(world) -> None:
    m, agent = world
    for seq in (1, 2, 3):
        message = echo_request(seq=seq)
        _, replies = send(agent, fragments(m, message, ident=IDENT + seq))
        assert_full_echo_reply(m, replies, 1500, seq=seq)


def test_an_exact_duplicate_fragment_changes_nothing(world) -> None:
    m, agent = world
    first, middle, last = fragments(m, echo_request())
    _, replies = send(agent, [first, middle, middle, last])
    assert_full_echo_reply(m, replies, 1500)
    assert gateway.REASSEMBLY.dropped == {"duplicate": 1}


def test_unfragmented_echo_is_still_answered_by_the_flow_alone(world) -> None:
    m, agent = world
    outcome, replies = kit.punt_replies(agent, fragments(m, echo_request(b"x" * 56))[0],
                                        VM_PORT)
    assert outcome.punts == [] and replies == []
    port, reply = outcome.only()
    assert port == VM_PORT and reply["icmpv4_type"] == icmp.ICMP_ECHO_REPLY
    assert outcome.trace[-1].kind == KIND_GATEWAY


# ------------------------------------------------------------------ not answered

def test_a_missing_fragment_gets_no_reply_and_is_freed_after_the_timeout(world, clock) -> None:
    m, agent = world
    first, _, last = fragments(m, echo_request())
    assert send(agent, [first, last])[1] == []
    assert len(gateway.REASSEMBLY) == 1 and gateway.REASSEMBLY.bytes_held > 1500
    clock.now += ipfrag.DEFAULT_TIMEOUT
    # the next punted fragment (here another ping's) finds the old one expired
    assert send(agent, fragments(m, echo_request(), ident=7)[:1])[1] == []
    assert gateway.REASSEMBLY.dropped == {"timeout": 1}
    assert len(gateway.REASSEMBLY) == 1 and gateway.REASSEMBLY.bytes_held < 1600
    clock.now += ipfrag.DEFAULT_TIMEOUT
    assert gateway.REASSEMBLY.expire() == 1 and gateway.REASSEMBLY.bytes_held == 0


def test_overlapping_fragments_get_no_reply(world) -> None:
    m, agent = world
    message = echo_request()
    first, middle, last = fragments(m, message)
    overlap = ip_frame(m, message[1472:1472 + 64], 1472, True)
    assert send(agent, [first, overlap, middle, last])[1] == []
    assert gateway.REASSEMBLY.dropped["overlap"] == 1


def test_a_datagram_past_65535_bytes_is_dropped(world) -> None:
    m, agent = world
    message = echo_request()
    death = [ip_frame(m, message[:1480], 0, True),
             ip_frame(m, b"\xaa" * 1480, 64800, False)]  # ends at 20 + 66280 bytes
    assert send(agent, death)[1] == []
    assert gateway.REASSEMBLY.dropped == {"too_large": 1} and len(gateway.REASSEMBLY) == 0


@pytest.mark.parametrize("kind", ["echo-reply", "timestamp", "bad-checksum"])
def test_a_complete_datagram_that_is_no_valid_echo_request_is_consumed(world, kind) -> None:
    m, agent = world
    message = {
        "echo-reply": echo_request(type_=icmp.ICMP_ECHO_REPLY),
        "timestamp": echo_request(type_=13),
        "bad-checksum": echo_request()[:2] + b"\x00\x00" + echo_request()[4:],
    }[kind]
    outcomes, replies = send(agent, fragments(m, message))
    assert replies == [] and all(o.punts for o in outcomes)
    assert len(gateway.REASSEMBLY) == 0


def test_fragments_to_other_addresses_are_not_punted(world) -> None:
    m, agent = world
    gw = kit.gw_mac(m, "rl-r", "nw-1")
    message = echo_request()
    # another VM behind the router: routed toward dp-2 as before, every fragment
    for outcome in send(agent, fragments(m, message, dst="10.2.0.20", eth_dst=gw))[0]:
        assert outcome.punts == [] and len(outcome.outputs) == 1
        assert outcome.trace[-1].table == Table.OUTPUT
    # fragmented UDP to the gateway: consumed by the gateway's drop flow, not punted
    for outcome in send(agent, fragments(m, message, proto=17))[0]:
        assert outcome.punts == [] and outcome.dropped
        assert outcome.trace[-1].priority == Prio.GATEWAY


def test_a_gateway_gone_from_the_view_is_not_answered(world) -> None:
    """The handler checks the current View, not only that the flows punted."""
    m, agent = world
    frames = fragments(m, echo_request())
    stale = agent.desired.flows()  # the flows as installed before the change
    m.delete("routes", next(u for u, r in m.model["routes"].items()
                            if r["network_uuid"] == "nw-1"))
    agent.store.load(m.snapshot())
    replies = []
    for frame in frames:
        outcome = Pipeline(stale.values()).run(kit.frame_fields(frame, VM_PORT))
        assert outcome.punts
        replies += gateway.fragment_answer(agent.view(), PacketIn(
            outcome.punts[0][0], Table.ROUTE, "action", VM_PORT, frame))
    assert replies == []


# ------------------------------------------------------------------ the flows

def punting(agent: kit.Agent) -> list:
    return [f for f in agent.desired.flows().values() if f.kind == KIND_GATEWAY_FRAGMENT]


def test_one_punt_per_local_vif_and_router_address_through_that_vifs_meter() -> None:
    m = kit.routed_world()
    m.vif("c", "dp-1", "nw-1", "10.1.0.30")
    m.vif("d", "dp-1", m.network("3", "10.3.0.0/24"), "10.3.0.30")  # no router
    agent = kit.agent_on(m, "1", {"if-a": 3, "if-c": 4, "if-d": 5, "if-b": 6})
    flows = punting(agent)
    # per local vif on a routed network, one per router address (if-b is remote)
    assert sorted(f.match_dict()["in_port"] for f in flows) == [3, 3, 4, 4]
    for flow in flows:
        match = flow.match_dict()
        assert flow.table == Table.ROUTE and flow.priority == Prio.GATEWAY_FRAGMENT
        assert flow.actions == punt_actions(match["in_port"])
        assert (match["eth_dst"], match["ip_proto"], match["ip_frag"]) == \
            (kit.gw_mac(m, "rl-r", "nw-1"), 1, (1, 1))
    assert sorted(f.match_dict()["ipv4_dst"] for f in flows) == [GW_IP, GW_IP] + ["10.2.0.1"] * 2
    # a port without ingress answers nothing, fragments included
    for route in m.model["routes"].values():
        route["ingress"] = False
    assert punting(kit.agent_on(m, "1", {"if-a": 3})) == []


def test_every_punting_flow_has_a_controller_action_only_in_route() -> None:
    m = kit.routed_world()
    flows = kit.agent_on(m, "1", {"if-a": 3}).desired.flows().values()
    # (+ the routing feature's ICMP unreachable punts, tests/unit/test_vna_icmp_errors.py)
    assert {(f.table, f.kind) for f in flows if Controller() in f.actions} == \
        {(Table.ROUTE, KIND_GATEWAY_FRAGMENT), (Table.ROUTE, KIND_ROUTE),
         (Table.ARP_RESOLVE, KIND_HOST_UNREACH)}


@pytest.mark.skipif(shutil.which("ovs-ofctl") is None, reason="scripts/setup.sh installs OVS")
def test_the_punt_flow_encodes_as_ovs_reads_it() -> None:
    """os-ken puts the Nicira ip_frag field before eth_type; OVS checks prerequisites in
    wire order, so vna.ofmsg sends eth_type as NXM_OF_ETH_TYPE first."""
    m = kit.routed_world()
    flow = punting(kit.agent_on(m, "1", {"if-a": 3}))[0]
    msg = to_flow_mod(flow, FakeDatapath())
    msg.serialize()
    out = subprocess.run(["ovs-ofctl", "ofp-print", msg.buf.hex()], capture_output=True,
                         text=True, check=True).stdout
    assert "decode error" not in out, out
    assert "priority=202,icmp," in out and "in_port=3" in out, out
    assert "nw_dst=10.1.0.1,nw_frag=yes" in out and "actions=meter:3,CONTROLLER:65535" in out


def test_a_udp_frame_is_unaffected(world) -> None:
    """frame_fields: an unfragmented datagram has ip_frag 0 and its L4 fields."""
    m, _ = world
    frame = packet.Packet()
    frame.add_protocol(ethernet.ethernet(src=m.mac_of("if-a"), ethertype=ETH_IPV4))
    frame.add_protocol(ipv4.ipv4(src=A_IP, dst=GW_IP, proto=17))
    frame.add_protocol(udp.udp(src_port=1, dst_port=2))
    frame.serialize()
    fields = kit.frame_fields(bytes(frame.data), 1)
    assert fields["ip_frag"] == 0 and fields["udp_dst"] == 2
    later = kit.frame_fields(ip_frame(m, b"\x08" * 16, 1480, False), 1)
    assert later["ip_frag"] == 3 and later["icmpv4_type"] == 0
