"""Every generated flow keeps its table's declared contract (vna.pipeline.PIPELINE), and
every flow's cookie kind belongs to the feature that made it."""

from __future__ import annotations

import pytest
from test_vna_incremental import Churn
from vna_kit import agent_on, routed_world

from vna.actions import Controller, Output
from vna.desired import DesiredState, owners
from vna.features import BY_KIND, FEATURES
from vna.flows import Flow
from vna.pipeline import KIND_MISS, PIPELINE, SPECS, Stage, Table, miss_flows


def worlds():
    """(label, View) pairs covering both transports, routers, physical networks."""
    for transport in ("tunnel", "mac2mac"):
        m = routed_world()
        for dp, host in (("dp-1", "if-h1"), ("dp-2", "if-h2")):
            for network in ("nw-1", "nw-2"):
                m.dpn(dp, network, host)
        yield f"routed-{transport}", agent_on(m, "1", {"if-a": 1, "if-h1": 50},
                                              transport=transport).view()
        for seed in range(6):
            churn = Churn(seed)
            for _ in range(40):
                churn.step()
            yield f"churn{seed}-{transport}", agent_on(
                churn.m, "0", churn.binding(transport).ports, transport=transport
            ).view()


def check(flow: Flow) -> None:
    spec = SPECS.get(flow.table)
    assert spec is not None, f"{flow} is in an undeclared table"
    extra = {name for name, _ in flow.match} - spec.match
    assert not extra, f"{Table(flow.table).name} may not match {extra}: {flow}"
    if flow.goto is not None:
        assert flow.goto in SPECS and flow.goto > flow.table, f"bad goto in {flow}"
    sends = [x for x in flow.actions if isinstance(x, Output | Controller)]
    assert not sends or spec.sends, f"{Table(flow.table).name} may not send: {flow}"


@pytest.mark.parametrize("label,view", list(worlds()), ids=lambda v: v if isinstance(v, str)
                         else "")
def test_every_flow_keeps_its_table_contract_and_its_feature_kind(label, view):
    flows = 0
    for feature in FEATURES:
        state = DesiredState([feature])
        state.rebuild(view)
        for flow in state.flows().values():
            check(flow)
            assert BY_KIND[flow.kind] is feature, f"{feature.name} made {flow}"
            flows += 1
    assert flows > len(PIPELINE)
    assert owners(view)


def test_declarations_are_well_formed():
    tables = [spec.table for spec in PIPELINE]
    assert tables == sorted(tables) and len(set(tables)) == len(tables) == len(Table)
    for spec in PIPELINE:
        assert spec.miss is None or spec.miss > spec.table
        assert spec.doc.strip()
    # the egress half is the tail: once egress, never back to ingress
    stages = [spec.stage for spec in PIPELINE]
    assert stages == sorted(stages, key=lambda s: s is Stage.EGRESS)
    # only OUTPUT sends toward VMs after the decision; responders answer out of IN_PORT
    assert [s.table for s in PIPELINE if s.stage is Stage.EGRESS and s.sends] == [Table.OUTPUT]


def test_one_miss_flow_per_table_from_the_declaration():
    misses = miss_flows()
    assert [(f.table, f.goto) for f in misses] == [(s.table, s.miss) for s in PIPELINE]
    assert all(f.priority == 0 and f.kind == KIND_MISS and not f.match for f in misses)
