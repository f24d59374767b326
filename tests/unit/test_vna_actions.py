"""The typed actions: one encoder and one evaluator per class, and the encoder produces
what OVS itself reads back (ovs-ofctl ofp-print decodes our flow_mod bytes; no switch)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from os_ken.ofproto import ofproto_v1_3, ofproto_v1_3_parser

from vna import actions as a
from vna.flows import Flow, make_match
from vna.flowsim import CT_EST, CT_NEW, CT_RPL, CT_TRK, EVALUATORS, Pipeline
from vna.ofmsg import ENCODERS, to_flow_mod

# (action, what ovs-ofctl prints for it): the reference is OVS's own decoder.
CASES = [
    (a.Output(3), "output:3"),
    (a.Output(a.IN_PORT), "IN_PORT"),
    (a.SetField("reg15", 5), "set_field:0x5->reg15"),
    (a.SetField("eth_src", "02:00:00:00:00:01"), "set_field:02:00:00:00:00:01->eth_src"),
    (a.SetField("tun_ipv4_dst", "192.0.2.1"), "set_field:192.0.2.1->tun_dst"),
    (a.Move("eth_src", "eth_dst", 48), "move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[]"),
    (a.Move("arp_spa", "arp_tpa", 32), "move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[]"),
    (a.DecTtl(), "dec_ttl"),
    (a.Ct(commit=True, zone=5, table=70), "ct(commit,table=70,zone=5)"),
    (a.Ct(zone_src="reg13", table=72), "ct(table=72,zone=NXM_NX_REG13[0..15])"),
    (
        a.Ct(commit=True, zone=1, nat=a.Nat("src", "10.0.0.1")),
        "ct(commit,zone=1,nat(src=10.0.0.1))",
    ),
    (
        a.Ct(commit=True, zone=1, nat=a.Nat("dst", "10.0.0.5", "10.0.0.6", 80, 81)),
        "ct(commit,zone=1,nat(dst=10.0.0.5-10.0.0.6:80-81))",
    ),
    (a.Ct(zone=1, nat=a.Nat()), "ct(zone=1,nat)"),
    (
        a.Ct(commit=True, zone=2, exec=(a.SetField("ct_mark", 7),)),
        "ct(commit,zone=2,exec(set_field:0x7->ct_mark))",
    ),
    (a.CtClear(), "ct_clear"),
    (a.Controller(), "CONTROLLER:65535"),
    (a.Meter(3), "meter:3"),
    (a.Conjunction(7, 1, 2), "conjunction(7,1/2)"),
]


class FakeDatapath:
    ofproto = ofproto_v1_3
    ofproto_parser = ofproto_v1_3_parser
    id = 1

    def set_xid(self, msg):  # os-ken asks the datapath for an xid on serialize
        msg.set_xid(1)


def ovs_print(flow: Flow) -> str:
    msg = to_flow_mod(flow, FakeDatapath())
    msg.serialize()
    out = subprocess.run(
        ["ovs-ofctl", "ofp-print", msg.buf.hex()], capture_output=True, text=True, check=True
    ).stdout
    assert "actions=" in out, out
    return out.split("actions=", 1)[1].strip()


def test_every_action_class_has_one_encoder_and_one_evaluator():
    assert set(ENCODERS) == set(a.ACTION_TYPES)
    assert set(EVALUATORS) == set(a.ACTION_TYPES)
    assert {type(action) for action, _ in CASES} == set(a.ACTION_TYPES)


@pytest.mark.skipif(shutil.which("ovs-ofctl") is None, reason="scripts/setup.sh installs OVS")
@pytest.mark.parametrize("action,printed", CASES, ids=[p for _, p in CASES])
def test_encoder_matches_what_ovs_decodes(action, printed):
    # prerequisites: ct() needs ip in the match, ARP fields need arp
    match = make_match(eth_type=0x0806 if "ARP" in printed else 0x0800)
    assert ovs_print(Flow(20, 100, match, (action,), kind=1)) == printed


def test_meter_is_an_instruction_before_the_actions():
    flow = Flow(20, 100, (), (a.Output(2), a.Meter(4)), kind=1)
    kinds = [type(i).__name__ for i in to_flow_mod(flow, FakeDatapath()).instructions]
    assert kinds == ["OFPInstructionMeter", "OFPInstructionActions"]


# --- the evaluator's semantics ----------------------------------------------------
def run(flows, **packet):
    return Pipeline(flows).run(dict({"in_port": 1}, **packet))


def test_registers_start_at_zero_and_are_matched_and_moved():
    flows = [
        Flow(0, 1, make_match(reg15=0), (a.SetField("reg15", 9),), goto=1, kind=1),
        Flow(1, 1, make_match(reg15=9), (a.Move("reg15", "reg14", 32),), goto=2, kind=1),
        Flow(2, 1, make_match(reg14=9), (a.Output(5),), kind=1),
    ]
    assert run(flows).only()[0] == 5


def stateful() -> list[Flow]:
    """A to-VM firewall for port 2 (zone 7): new connections only from port 1 to tcp/80;
    replies and established traffic pass both ways."""
    ip = {"eth_type": 0x0800}
    return [
        Flow(0, 1, make_match(ip), (a.Ct(zone=7, table=1),), kind=1),
        Flow(1, 10, make_match(ip, ct_state=(CT_TRK | CT_EST, CT_TRK | CT_EST)),
             (a.Output(a.IN_PORT),), kind=1),
        Flow(1, 5, make_match(ip, in_port=1, ip_proto=6, tcp_dst=80,
                              ct_state=(CT_TRK | CT_NEW, CT_TRK | CT_NEW)),
             (a.Ct(commit=True, zone=7), a.Output(2)), kind=1),
        Flow(1, 0, (), kind=1),
    ]


def tcp(in_port, src, dst, sport, dport):
    return dict(in_port=in_port, eth_type=0x0800, ipv4_src=src, ipv4_dst=dst, ip_proto=6,
                tcp_src=sport, tcp_dst=dport)


def test_conntrack_is_stateful_per_zone():
    sim = Pipeline(stateful())
    assert sim.run(tcp(2, "10.0.0.2", "10.0.0.1", 80, 5000)).dropped  # unsolicited reply
    assert sim.run(tcp(1, "10.0.0.1", "10.0.0.2", 5000, 81)).dropped  # not allowed
    assert sim.run(tcp(1, "10.0.0.1", "10.0.0.2", 5000, 80)).ports == [2]  # committed
    reply = sim.run(tcp(2, "10.0.0.2", "10.0.0.1", 80, 5000))
    assert reply.ports == [2] and reply.outputs[0][1]["ct_state"] == CT_TRK | CT_EST | CT_RPL
    assert sim.run(tcp(1, "10.0.0.1", "10.0.0.2", 5000, 80)).ports == [1]  # now established
    assert list(sim.conntrack) == [7] and len(sim.conntrack[7]) == 1


def test_ct_clear_forgets_the_state_and_controller_records_a_punt():
    flows = [
        Flow(0, 1, make_match(eth_type=0x0800), (a.Ct(zone=1, table=1),), kind=1),
        Flow(1, 1, make_match(eth_type=0x0800), (a.CtClear(), a.Meter(3), a.Controller()),
             kind=2),
    ]
    out = run(flows, eth_type=0x0800, ipv4_src="10.0.0.1", ipv4_dst="10.0.0.2", ip_proto=1)
    (cookie, packet), = out.punts
    assert cookie == flows[1].cookie and packet["ct_state"] == 0 and out.meters == [3]


def test_conjunctive_match_needs_every_clause():
    flows = [
        Flow(0, 5, make_match(in_port=1), (a.Conjunction(4, 1, 2),), kind=1),
        Flow(0, 5, make_match(eth_type=0x0800, ip_proto=6), (a.Conjunction(4, 2, 2),), kind=1),
        Flow(0, 5, make_match(conj_id=4), (a.Output(9),), kind=1),
    ]
    assert run(flows, eth_type=0x0800, ip_proto=6).ports == [9]
    assert run(flows, eth_type=0x0800, ip_proto=17).dropped
    assert run(flows, in_port=2, eth_type=0x0800, ip_proto=6).dropped
