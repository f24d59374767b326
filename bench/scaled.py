"""The vna's per-event cost at K times a saved model, in process, without a switch.

    .venv/bin/python -m bench.scaled SNAPSHOT.json[.gz] K [--events 50] [--no-gc]

Builds from a snapshot (bench/run --save-snapshot) a model K times larger: K copies of
every virtual network with its vifs, leases, datapath networks and port bindings
(uuids suffixed, ids, MACs and segment ids shifted so nothing collides); the underlay,
datapaths and routers are kept once. Then dp-h1's core is driven as vna.agent drives it:
ModelStore.apply, View.updated, dirty_owners, DesiredState.update, for one vif created
(interface, MAC lease, IP lease) per event on a network dp-h1 holds, bound elsewhere.
Prints p50/max of each step in ms. `--no-gc` turns the cyclic collector off after the
first rebuild (the agent freezes it there, vna.agent): the difference is its pauses.

This is where the convergence target's vna share was profiled at 100,000 interfaces
(docs/performance.md, "Issue 13") without writing 100,000 interfaces through the RPC.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import time
from typing import Any

from vna.desired import DesiredState
from vna.dirty import dirty_owners
from vna.modelstore import ModelStore
from vna.view import LocalBinding, View
from vna.vnmgr_link import compact_row

Model = dict[str, dict[str, dict[str, Any]]]
DATAPATH = "dp-h1"


def scaled(model: Model, k: int) -> Model:
    """`model` with k - 1 more copies of every virtual network and what hangs on it."""
    nets = {u for u, r in model["networks"].items() if r.get("network_mode") != "physical"}
    vifs = {u for u, r in model["interfaces"].items() if r.get("mode") == "vif"}
    copied = {
        "networks": nets,
        "interfaces": vifs,
        "mac_leases": {u for u, r in model["mac_leases"].items() if r["interface_uuid"] in vifs},
        "ip_leases": {u for u, r in model["ip_leases"].items() if r["interface_uuid"] in vifs},
        "datapath_networks": {u for u, r in model["datapath_networks"].items()
                              if r["network_uuid"] in nets},
        "active_interfaces": {u for u, r in model.get("active_interfaces", {}).items()
                              if r["interface_uuid"] in vifs},
    }
    renamed = set().union(*copied.values())
    for copy in range(1, k):
        for resource, uuids in copied.items():
            rows = model[resource]
            for uuid in list(uuids):
                row = {f: f"{v}-{copy}" if isinstance(v, str) and v in renamed else v
                       for f, v in rows[uuid].items()}
                row["uuid"], row["id"] = f"{uuid}-{copy}", row["id"] + copy * 200_000
                for field in ("mac_address", "broadcast_mac_address"):
                    if row.get(field):  # first octet 02 -> 06, 0a, ...: still local unicast
                        row[field] = f"{0x02 | copy << 2:02x}" + row[field][2:]
                if resource == "networks" and row.get("segment_id"):
                    row["segment_id"] += copy * 200_000
                rows[row["uuid"]] = row
    return model


def vif_event(i: int, network: str) -> list[dict[str, Any]]:
    """The rows of one vif created on `network`, bound on dp-h2, as vnmgr sends them."""
    iface, mac, ip = f"if-ev{i}", f"ml-ev{i}", f"il-ev{i}"
    flags = dict.fromkeys(("enable_routing", "ingress_filtering_enabled", "enable_filtering",
                           "enable_route_translation"), False)
    rows = [
        ("interfaces", iface, {"mode": "vif", "owner_datapath_uuid": "dp-h2",
                               "port_name": None, "display_name": None, **flags}),
        ("mac_leases", mac, {"interface_uuid": iface,
                             "mac_address": f"52:54:00:ee:{i >> 8 & 255:02x}:{i & 255:02x}"}),
        ("ip_leases", ip, {"interface_uuid": iface, "network_uuid": network,
                           "mac_lease_uuid": mac, "enable_routing": False,
                           "ipv4_address": f"10.250.{i >> 8 & 255}.{i & 255}"}),
    ]
    return [{"op": "upsert", "resource": resource, "uuid": uuid,
             "data": {"uuid": uuid, "id": 9_000_000 + i, **data}}
            for resource, uuid, data in rows]


def main() -> int:
    args = argparse.ArgumentParser()
    args.add_argument("snapshot")
    args.add_argument("k", type=int)
    args.add_argument("--events", type=int, default=50)
    args.add_argument("--no-gc", action="store_true")
    opts = args.parse_args()
    opener = gzip.open if opts.snapshot.endswith(".gz") else open
    with opener(opts.snapshot, "rt") as f:
        model = scaled(json.loads(f.read(), object_hook=compact_row)["model"], opts.k)
    print({resource: len(rows) for resource, rows in model.items() if rows})
    store = ModelStore()
    store.load(model)
    binding = LocalBinding(datapath_uuid=DATAPATH, transport="tunnel")
    started = time.perf_counter()
    view = View(store.model, binding)
    desired = DesiredState()
    desired.rebuild(view)
    print(f"view + rebuild: {time.perf_counter() - started:.1f} s, "
          f"{len(desired.flows())} flows")
    gc.freeze()
    if opts.no_gc:
        gc.disable()
    held = sorted(r["network_uuid"] for r in model["datapath_networks"].values()
                  if r["datapath_uuid"] == DATAPATH
                  and model["networks"][r["network_uuid"]].get("network_mode") != "physical")
    steps: dict[str, list[float]] = {"apply": [], "view": [], "dirty": [], "desired": []}
    for i in range(opts.events):
        t0 = time.perf_counter()
        applied = store.apply(vif_event(i, held[i % len(held)]))
        t1 = time.perf_counter()
        new = View.updated(view, applied, store.model, binding)
        t2 = time.perf_counter()
        dirty = dirty_owners(applied, view, new)
        t3 = time.perf_counter()
        desired.update(new, dirty)
        t4 = time.perf_counter()
        view = new
        for step, took in zip(steps, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            steps[step].append(took * 1000)
    for step, times in steps.items():
        times.sort()
        print(f"{step}: p50 {times[len(times) // 2]:.1f} ms, max {times[-1]:.1f} ms")
    total = sorted(map(sum, zip(*steps.values(), strict=True)))
    print(f"event: p50 {total[len(total) // 2]:.1f} ms, max {total[-1]:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
