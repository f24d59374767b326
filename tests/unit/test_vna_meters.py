"""Per-port meters: desired from the binding, diffed against the switch (add, modify,
delete one by one - never all), added before flows and deleted after them."""

from __future__ import annotations

from collections.abc import Iterable
from types import SimpleNamespace
from typing import Any

import pytest
import vna_kit as kit
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from vna.agent import Agent
from vna.meter_syncer import MeterSyncer
from vna.meters import ICMP_ERROR_METER_ID, MeterConfig, MeterSpec, desired_meters, plan
from vna.ofmsg import meter_delete, meter_from_stats, meter_mod
from vna.ovsdb import OvsPort
from vna.switch import SwitchError

DATAPATH = SimpleNamespace(ofproto=ofp, ofproto_parser=parser)
CONFIG = MeterConfig(rate=100, burst=100)


def spec(meter_id: int, rate: int = 100, burst: int = 100) -> MeterSpec:
    return MeterSpec(meter_id, rate, burst)


ICMP = ICMP_ERROR_METER_ID  # the datapath-wide meter of ICMP errors, wherever a router is


def test_one_meter_per_bound_local_vif() -> None:
    m = kit.routed_world()
    # if-a is a vif, if-h1 the host (underlay) port, if-b a vif of the other datapath.
    view = kit.agent_on(m, "1", {"if-a": 3, "if-h1": 7, "if-b": 9}).view()
    assert desired_meters(view, CONFIG) == {3: spec(3), ICMP: spec(ICMP)}
    assert desired_meters(kit.agent_on(m, "1", {}).view(), CONFIG) == {ICMP: spec(ICMP)}
    for route in list(m.model["routes"]):  # no router: no ICMP errors
        m.delete("routes", route)
    assert desired_meters(kit.agent_on(m, "1", {"if-a": 3}).view(), CONFIG) == {3: spec(3)}
    assert desired_meters(None, CONFIG) == {}


def test_plan_adds_modifies_and_deletes_only_what_differs() -> None:
    desired = {1: spec(1), 2: spec(2), 3: spec(3)}
    installed = {2: spec(2), 3: spec(3, rate=50), 4: spec(4), 5: None}
    todo = plan(desired, installed)
    assert todo.add == [spec(1)]
    assert todo.modify == [spec(3)]
    assert todo.delete == [4, 5]
    assert not plan(desired, dict(desired))


def test_meter_messages_round_trip_and_never_delete_all() -> None:
    mod = meter_mod(spec(3, 20, 5), DATAPATH)
    assert (mod.command, mod.meter_id, mod.bands[0].rate, mod.bands[0].burst_size) == (
        ofp.OFPMC_ADD, 3, 20, 5)
    assert meter_mod(spec(3), DATAPATH, modify=True).command == ofp.OFPMC_MODIFY
    installed = parser.OFPMeterConfigStats(flags=mod.flags, meter_id=3, bands=mod.bands)
    assert meter_from_stats(installed, ofp) == spec(3, 20, 5)
    kbps = parser.OFPMeterConfigStats(flags=ofp.OFPMF_KBPS, meter_id=3, bands=mod.bands)
    assert meter_from_stats(kbps, ofp) is None
    assert meter_delete(4, DATAPATH).meter_id == 4
    for everything in (ofp.OFPM_ALL, ofp.OFPM_CONTROLLER):
        with pytest.raises(ValueError):
            meter_delete(everything, DATAPATH)


class FakeSwitch:
    """A SwitchConnection stand-in that holds flows and meters like OVS and records
    what was sent, in order."""

    def __init__(self, dpid: int, meters: dict[int, MeterSpec] | None = None) -> None:
        self.dpid = dpid
        self.datapath, self.ofp, self.parser = DATAPATH, ofp, parser
        self.meters = dict(meters or {})
        self.flows: dict[tuple[int, int], Any] = {}
        self.log: list[tuple[str, Any]] = []
        self.reject_meters = False

    def dump_flows(self) -> list[Any]:
        return [SimpleNamespace(table_id=t, cookie=c) for t, c in self.flows]

    def dump_meters(self) -> list[Any]:
        return [parser.OFPMeterConfigStats(
            flags=ofp.OFPMF_PKTPS | ofp.OFPMF_BURST, meter_id=s.meter_id,
            bands=[parser.OFPMeterBandDrop(rate=s.rate, burst_size=s.burst)])
            for s in self.meters.values()]

    def send_checked(self, messages: list[Any]) -> None:
        if messages and self.reject_meters:
            raise SwitchError("OFPET_METER_MOD_FAILED")
        for msg in messages:
            assert msg.meter_id < ofp.OFPM_MAX, "never a delete of all meters"
            band = msg.bands[0] if msg.bands else None
            if msg.command == ofp.OFPMC_DELETE:
                self.meters.pop(msg.meter_id)
                self.log.append(("meter-", msg.meter_id))
            else:
                self.meters[msg.meter_id] = spec(msg.meter_id, band.rate, band.burst_size)
                self.log.append(("meter+", msg.meter_id))

    def send_bundle(self, encoded: Iterable[bytes], count: int | None = None) -> None:
        messages = [kit.decode_flow_mod(m) for m in encoded]
        for msg in messages:  # OVS rejects a flow naming an unknown meter: no flow applied
            meters = [i.meter_id for i in getattr(msg, "instructions", [])
                      if hasattr(i, "meter_id")]
            if msg.command == ofp.OFPFC_ADD and not all(i in self.meters for i in meters):
                raise SwitchError("OFPMMFC_INVALID_METER: flow before its meter")
        for msg in messages:
            if msg.command == ofp.OFPFC_ADD:
                self.flows[(msg.table_id, msg.cookie)] = msg
            else:
                self.flows.pop((msg.table_id, msg.cookie), None)
        self.log.append(("flows", len(messages)))

    def packet_out(self, port: int, data: bytes) -> None:
        pass


def connected_agent(switch: FakeSwitch, ports: dict[str, int], router: bool = True) -> Agent:
    m = kit.routed_world()
    if not router:
        for route in list(m.model["routes"]):
            m.delete("routes", route)
    m.vif("c", "dp-1", "nw-1", "10.1.0.30")
    m.vif("d", "dp-1", m.network("3", "10.3.0.0/24"), "10.3.0.30")  # no router: no punt
    for dp in m.model["datapaths"].values():
        dp["dpid"] = f"0x{switch.dpid:016x}" if dp["uuid"] == "dp-1" else "0x2"
    agent = Agent("1", "tunnel", None, meters=CONFIG)
    agent.store.load(m.snapshot())
    agent.have_model = True
    agent.ports = {name: OvsPort(name, ofport, f"if-{name}", "") for name, ofport in ports.items()}
    agent._on_connected(switch)  # type: ignore[arg-type]
    return agent


def test_connect_diffs_the_installed_meters_and_keeps_the_right_ones() -> None:
    # Installed: 3 is right, 5 has the wrong rate, 8 is stale.
    switch = FakeSwitch(0x1, {3: spec(3), 5: spec(5, rate=7), 8: spec(8)})
    connected_agent(switch, {"a": 3, "c": 5})
    assert switch.meters == {3: spec(3), 5: spec(5), ICMP: spec(ICMP)}
    assert [e for e in switch.log if e[0] != "flows"] == [("meter+", ICMP), ("meter+", 5),
                                                          ("meter-", 8)]
    kinds = [e[0] for e in switch.log]
    assert kinds.index("meter+") < kinds.index("flows") < kinds.index("meter-")


def test_port_changes_add_and_delete_meters_around_the_flows() -> None:
    switch = FakeSwitch(0x1)
    agent = connected_agent(switch, {"a": 3})
    assert switch.meters == {3: spec(3), ICMP: spec(ICMP)}
    switch.log.clear()
    agent._on_ports({"a": OvsPort("a", 4, "if-a", "")})  # the vif moved to another port
    assert switch.meters == {4: spec(4), ICMP: spec(ICMP)}
    assert switch.log == [("meter+", 4), ("flows", switch.log[1][1]), ("meter-", 3)]
    switch.log.clear()
    agent._on_ports({})
    assert switch.meters == {ICMP: spec(ICMP)} and switch.log[-1] == ("meter-", 4)


def test_meter_failures_are_counted_and_do_not_stop_the_flows() -> None:
    switch = FakeSwitch(0x1)
    switch.reject_meters = True
    # no router: nothing punts (d's network has no gateway, no ICMP errors)
    agent = connected_agent(switch, {"d": 3}, router=False)
    assert agent.meters.failures == 1 and switch.meters == {}
    assert switch.flows and agent.stats.full_syncs == 1
    switch.reject_meters = False
    agent._on_ports({"d": OvsPort("d", 4, "if-d", "")})
    assert switch.meters == {4: spec(4)}  # re-read and retried on the next change


def test_a_switch_refusing_meters_refuses_the_punting_flows_until_they_work() -> None:
    """a's network has a gateway, so a has a punting flow (fragments of ICMP to it,
    vna.features.gateway) naming its meter: while the switch refuses meters it refuses
    that flow, and with it the whole atomic bundle; the next change retries both."""
    switch = FakeSwitch(0x1)
    switch.reject_meters = True
    agent = connected_agent(switch, {"a": 3})
    assert agent.meters.failures == 1 and agent.stats.sync_failures == 1
    assert switch.meters == {} and switch.flows == {}
    switch.reject_meters = False
    agent.queue.put(("ports", {"a": OvsPort("a", 4, "if-a", "")}))
    agent.queue.put(("stop", None))
    agent._run()  # the worker: after a failed full sync the next change syncs in full
    assert switch.meters == {4: spec(4), ICMP: spec(ICMP)}
    assert set(switch.flows) == {(f.table, f.cookie) for f in agent.desired.flows().values()}


def test_meter_syncer_without_view_deletes_its_meters_one_by_one() -> None:
    switch = FakeSwitch(0x1, {3: spec(3), 4: spec(4)})
    syncer = MeterSyncer(CONFIG)
    todo = syncer.before_flows(switch, None, full=True)  # type: ignore[arg-type]
    syncer.after_flows(switch, todo)  # type: ignore[arg-type]
    assert switch.log == [("meter-", 3), ("meter-", 4)] and syncer.installed == {}
