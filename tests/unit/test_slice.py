"""Slices (vnet.slice, vnmgr.subscriptions): a datapath's slice computes exactly the flows
the whole model gives for everything in it, and the events vnmgr routes keep each
agent's copy equal to its slice."""

from __future__ import annotations

import pytest
from test_vna_incremental import Churn
from vna_kit import TUNNEL_PORT, Agent, ModelBuilder, routed_world, two_hosts

from vna.features.gateway import KIND_GATEWAY, KIND_GATEWAY_FRAGMENT
from vna.modelstore import ModelStore
from vna.view import LocalBinding
from vnet.slice import REFS, ModelIndex, Watch, interest, slice_keys, slice_model
from vnmgr.subscriptions import Subscriptions

OWNER_RESOURCE = {"network": "networks", "interface": "interfaces",
                  "route_link": "route_links", "security_group": "security_groups"}


def sliced(model: dict, datapath: str, watch: Watch | None = None) -> tuple[dict, set]:
    index = ModelIndex(model)
    keys = slice_keys(index, interest(index, {datapath}, watch or Watch()))
    return slice_model(index, keys), keys


def assert_closed(model: dict) -> None:
    """No row of the slice names a row outside it."""
    for resource, rows in model.items():
        for uuid, row in rows.items():
            for key, parent in REFS[resource]:
                if row.get(key) is not None:
                    assert row[key] in model[parent], (resource, uuid, key, row[key])


@pytest.mark.parametrize("transport", ["tunnel", "mac2mac"])
@pytest.mark.parametrize("seed", range(8))
def test_a_slice_gives_the_full_models_flows_for_everything_in_it(seed, transport):
    churn = Churn(seed)
    for step in range(80):
        churn.step()
        if step % 8:
            continue
        model, binding = churn.m.snapshot(), churn.binding(transport)
        part, keys = sliced(model, "dp-0", Watch(iface_ids=frozenset(binding.ports)))
        assert_closed(part)
        full, mine = Agent(model, binding).desired, Agent(part, binding).desired
        assert set(mine.flows()).issubset(full.flows()), (seed, step)
        owners = {o for o in full._by_owner
                  if o[0] == "datapath" or (OWNER_RESOURCE[o[0]], o[1]) in keys}
        for owner in owners:
            assert (sorted(f.cookie for f in mine.owner_flows(owner))
                    == sorted(f.cookie for f in full.owner_flows(owner))), (seed, step, owner)


def test_a_datapath_holds_only_networks_it_serves_or_routes_to():
    m = routed_world()  # nw-1 (a on dp-1) - rl-r - nw-2 (b on dp-2)
    nw3 = m.network("3", "10.3.0.0/24")  # on dp-2 only, no router
    m.vif("c", "dp-2", nw3, "10.3.0.30")
    part, _ = sliced(m.snapshot(), "dp-1")
    assert set(part["networks"]) >= {"nw-1", "nw-2"}
    assert "nw-3" not in part["networks"] and "if-c" not in part["interfaces"]
    assert "if-b" in part["interfaces"]  # routed to
    part2, _ = sliced(m.snapshot(), "dp-2")
    assert "nw-3" in part2["networks"]


def test_a_watched_port_brings_its_interface_and_network():
    m = routed_world()
    nw3 = m.network("3", "10.3.0.0/24")
    m.vif("c", None, nw3, "10.3.0.30")
    assert "if-c" not in sliced(m.snapshot(), "dp-1")[0]["interfaces"]
    part, _ = sliced(m.snapshot(), "dp-1", Watch(iface_ids=frozenset({"if-c"})))
    assert "if-c" in part["interfaces"] and "nw-3" in part["networks"]


def changes_between(store: ModelStore, model: dict) -> list[dict]:
    """An event's changes, as vnmgr would publish them, from two model copies."""
    return [{"resource": c.resource, "uuid": c.uuid, "op": "upsert" if c.new else "delete",
             "data": c.new if c.new else c.old} for c in store.load(model)]


@pytest.mark.parametrize("seed", range(40))
def test_routed_events_keep_every_agent_equal_to_its_slice(seed):
    churn = Churn(seed)
    source = ModelStore()
    source.load(churn.m.snapshot())
    subs = Subscriptions(ModelIndex(churn.m.snapshot()))
    copies: dict[str, ModelStore] = {}
    for i in range(3):
        copy = ModelStore()
        snapshot, _n = subs.register(f"{i}", Watch())
        copy.load(snapshot)
        copies[f"{i}"] = copy
    for step in range(100):
        churn.step()
        if step % 9 == 0:  # a port appears: the agent watches it
            iface = churn.pick("interfaces", mode="vif")
            if iface:
                for node, part in subs.set_watch("1", Watch(iface_ids=frozenset({iface}))):
                    copies[node.node_id].apply(part)
        for node, part in subs.on_event(changes_between(source, churn.m.snapshot())):
            copies[node.node_id].apply(part)
        for node_id, copy in copies.items():
            node = subs.nodes[node_id]
            expected = slice_model(subs.index, slice_keys(
                subs.index, interest(subs.index, node.datapaths, node.watch)))
            assert copy.model == expected, (seed, step, node_id)


def test_node_ids_match_the_kits_datapaths():
    m = ModelBuilder()
    dp = m.datapath("0")
    assert m.model["datapaths"][dp]["node_id"] == "0"


def test_a_port_watched_before_its_interface_exists_brings_it_when_created():
    m = routed_world()
    subs = Subscriptions(ModelIndex(m.snapshot()))
    copy = ModelStore()
    copy.load(subs.register("1", Watch(iface_ids=frozenset({"if-new"})))[0])
    store = ModelStore()
    store.load(m.snapshot())
    nw3 = m.network("3", "10.3.0.0/24")
    m.vif("new", None, nw3, "10.3.0.5")
    parts = subs.on_event(changes_between(store, m.snapshot()))
    assert [node.node_id for node, _ in parts] == ["1"]
    copy.apply(parts[0][1])
    assert "if-new" in copy.model["interfaces"] and "nw-3" in copy.model["networks"]


def test_a_remote_vif_on_a_network_in_the_slice_goes_only_where_it_is_needed():
    m = routed_world()  # dp-1 has nw-1 (and routes to nw-2), dp-2 has nw-2 (and nw-1)
    nw3 = m.network("3", "10.3.0.0/24")
    m.vif("c", "dp-2", nw3, "10.3.0.30")
    m.datapath("3")  # no agent
    subs = Subscriptions(ModelIndex(m.snapshot()))
    for node in ("1", "2"):
        subs.register(node, Watch())
    store = ModelStore()
    store.load(m.snapshot())
    m.vif("d", "dp-3", nw3, "10.3.0.40")  # nw-3 is only in dp-2's slice
    parts = subs.on_event(changes_between(store, m.snapshot()))
    assert [node.node_id for node, _ in parts] == ["2"]
    assert subs.recomputed == 2  # the registrations: the event was applied row by row


def assert_owners_exact(model: dict, datapath: str, ports: dict[str, int]) -> dict:
    """The slice's flows equal the whole model's for every owner in the slice, but the
    echo answers (vna.features.gateway) for the addresses of routers outside it, which
    only a shared non-transit network connects: those echoes go to that network's
    gateway datapath, which answers them (its slice holds those routers)."""
    binding = LocalBinding(datapath, "tunnel", ports, TUNNEL_PORT)
    part, keys = sliced(model, datapath)
    assert_closed(part)
    ports_outside = {r["interface_uuid"] for r in model["routes"].values()
                     if ("route_links", r["route_link_uuid"]) not in keys}
    outside = {lease["ipv4_address"] for lease in model["ip_leases"].values()
               if lease["interface_uuid"] in ports_outside}
    full, mine = Agent(model, binding).desired, Agent(part, binding).desired
    for owner in full._by_owner:
        if owner[0] == "datapath" or (OWNER_RESOURCE[owner[0]], owner[1]) in keys:
            expected = [f.cookie for f in full.owner_flows(owner)
                        if not (f.kind in (KIND_GATEWAY, KIND_GATEWAY_FRAGMENT)
                                and f.match_dict().get("ipv4_dst") in outside)]
            assert (sorted(f.cookie for f in mine.owner_flows(owner))
                    == sorted(expected)), owner
    return part


def test_a_chain_of_routers_is_in_the_slice_of_its_first_network():
    """nw-a - r1 - nw-b - r2 - nw-e (tests/e2e/test_traceroute.py): the source datapath
    resolves the whole chain, so its slice holds r2 and nw-e."""
    m = two_hosts()
    nwa, nwb, nwe = (m.network(n, c) for n, c in (("a", "10.1.0.0/24"),
                                                  ("b", "10.2.0.0/24"), ("e", "10.5.0.0/24")))
    m.vif("x", "dp-1", nwa, "10.1.0.11")
    m.vif("y", "dp-2", nwe, "10.5.0.16")
    r1 = m.router("r1", [(nwa, "10.1.0.1"), (nwb, "10.2.0.1")])
    r2 = m.router("r2", [(nwb, "10.2.0.254"), (nwe, "10.5.0.1")])
    m.route(r1, m.router_port(r1, nwb), nwb, "10.5.0.0/24")
    m.route(r2, m.router_port(r2, nwb), nwb, "10.1.0.0/24")
    part = assert_owners_exact(m.snapshot(), "dp-1", {"if-x": 1})
    assert {"nw-e", "rl-r2"} <= set(part["networks"]) | set(part["route_links"])
    assert "if-y" in part["interfaces"]


def test_a_shared_physical_network_does_not_join_tenants_into_one_slice():
    """Two tenants' routers with ports on one external network, each with its own
    default route via the upstream: tenant A's host never gets tenant B's network."""
    m = two_hosts()
    ext = m.network("ext", "172.16.0.0/24", mode="physical")
    nwa, nwb = m.network("a", "10.1.0.0/24"), m.network("b", "10.2.0.0/24")
    m.vif("x", "dp-1", nwa, "10.1.0.11")
    m.vif("y", "dp-2", nwb, "10.2.0.11")
    for name, net, gw, ext_ip in (("ra", nwa, "10.1.0.1", "172.16.0.4"),
                                  ("rb", nwb, "10.2.0.1", "172.16.0.5")):
        link = m.router(name, [(net, gw), (ext, ext_ip)])
        port = m.router_port(link, ext)
        m.model["interfaces"][port]["owner_datapath_uuid"] = "dp-1"
        m.route(link, port, ext, "0.0.0.0/0", gateway="172.16.0.1")
    part = assert_owners_exact(m.snapshot(), "dp-2", {"if-y": 1})
    assert "nw-ext" in part["networks"] and "nw-a" not in part["networks"]
    assert "if-x" not in part["interfaces"]
    # A route into the external network without a next hop makes it a transit network.
    link = "rl-rb"
    m.route(link, m.router_port(link, ext), ext, "10.9.0.0/16")
    assert "nw-a" in sliced(m.snapshot(), "dp-2")[0]["networks"]


def test_references_from_the_registry_match_the_serialized_rows():
    from vnet.serialize import references
    from vnet.slice import RESOURCES
    assert {r: REFS[r] for r in RESOURCES} == {r: references(r) for r in RESOURCES}
