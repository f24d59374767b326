"""In-process micro-benchmarks of the vna's hot paths on a saved model snapshot.

    .venv/bin/python -m bench.micro SNAPSHOT.json[.gz] [--datapath dp-h1]

A snapshot is what vnmgr's `snapshot` RPC returns ({"seq", "model"}); bench.profile
and bench/run build one with the lab. No switch is needed: this isolates the Python
costs the profile points at (View construction per event, flow_mod encoding with
os-ken and with vna.ofwire, parsing a flow dump with os-ken and with vna.switch's
flow-key reader).
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import struct
import sys
import time
from types import SimpleNamespace

from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from vna import ofwire
from vna.desired import DesiredState
from vna.ofmsg import to_flow_mod
from vna.switch import flow_keys
from vna.view import LocalBinding, View


def best(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def struct_flow_mod(cookie: int, table: int, priority: int, metadata: int, mac: bytes,
                    port: int) -> bytes:
    """A hand-packed OF1.3 flow_mod (match metadata/mask + eth_dst, apply output):
    what a dedicated encoder would do per flow, for the cost estimate only."""
    oxm = (struct.pack("!IQQ", 0x80000510, metadata, 0x3FFFFFFFF)
           + struct.pack("!I6s", 0x80000606, mac))
    match_len = 4 + len(oxm)
    match = struct.pack("!HH", 1, match_len) + oxm + b"\0" * ((8 - match_len % 8) % 8)
    inst = struct.pack("!HH4x", 4, 8 + 16) + struct.pack("!HHIH6x", 0, 16, port, 0)
    body = struct.pack("!QQBBHHHIIIH2x", cookie, 0, table, 0, 0, 0, priority, 0xFFFFFFFF,
                       0xFFFFFFFF, 0xFFFFFFFF, 0) + match + inst
    return struct.pack("!BBHI", 4, 14, 8 + len(body), 0) + body


def main() -> int:
    args = argparse.ArgumentParser()
    args.add_argument("snapshot")
    args.add_argument("--datapath", default="dp-h1")
    opts = args.parse_args()
    opener = gzip.open if opts.snapshot.endswith(".gz") else open
    with opener(opts.snapshot, "rt") as f:
        model = json.load(f)["model"]
    ports = {u: 10 + i for i, (u, row) in enumerate(sorted(model["interfaces"].items()))
             if row.get("owner_datapath_uuid") == opts.datapath and row.get("port_name")}
    binding = LocalBinding(datapath_uuid=opts.datapath, transport="tunnel", ports=ports,
                           tunnel_ofport=5)
    n_if = len(model["interfaces"])
    print(f"model: {n_if} interfaces, {len(model['ip_leases'])} ip leases, "
          f"{len(model['networks'])} networks; {len(ports)} local ports")

    t_view = best(lambda: View(model, binding), 10)
    print(f"View(model, binding) [per change event today]: {t_view * 1000:.1f} ms")
    gc_t = []
    for _ in range(3):
        started = time.perf_counter()
        gc.collect()
        gc_t.append(time.perf_counter() - started)
    print(f"gc.collect() with the model loaded: {min(gc_t) * 1000:.1f} ms")

    view = View(model, binding)
    desired = DesiredState()
    t_rebuild = best(lambda: DesiredState().rebuild(view), 2)
    desired.rebuild(view)
    flows = list(desired.flows().values())
    print(f"DesiredState.rebuild: {t_rebuild:.3f} s for {len(flows)} flows "
          f"({t_rebuild / len(flows) * 1e6:.1f} us/flow)")

    def per_event(label: str) -> None:
        times = []
        for _ in range(100):
            started = time.perf_counter()
            View(model, binding)
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        print(f"View per event, 100 events, {label}: p50 {times[49]:.1f} ms, "
              f"p99 {times[98]:.1f} ms, max {times[-1]:.1f} ms")

    per_event(f"{len(flows)} desired flows alive, gc on")
    gc.freeze()
    per_event("after gc.freeze()")
    gc.unfreeze()

    dp = SimpleNamespace(ofproto=ofp, ofproto_parser=parser, id=1)

    def oskn() -> None:
        for flow in flows:
            msg = to_flow_mod(flow, dp)
            add = parser.ONFBundleAddMsg(dp, 1, ofp.ONF_BF_ATOMIC | ofp.ONF_BF_ORDERED, msg, [])
            add.set_xid(1)
            add.serialize()

    t_os = best(oskn, 2)
    print(f"os-ken to_flow_mod + bundle-add serialize: {t_os:.3f} s "
          f"({t_os / len(flows) * 1e6:.1f} us/flow)")
    mac = bytes.fromhex("120000000001")
    t_struct = best(lambda: [struct_flow_mod(i, 60, 100, 7, mac, 5) for i in range(len(flows))])
    print(f"hand-packed struct flow_mod (proxy for a dedicated encoder): {t_struct:.3f} s "
          f"({t_struct / len(flows) * 1e6:.1f} us/flow)")

    ordered = sorted(flows, key=lambda f: (f.table, -f.priority))

    def wire() -> None:
        for _piece in ofwire.bundle_chunks(1, [ofwire.flow_mod(flow) for flow in ordered],
                                           len(ordered), 1):
            pass

    t_wire = best(wire, 3)
    print(f"vna.ofwire flow_mod + bundle pieces: {t_wire:.3f} s "
          f"({t_wire / len(flows) * 1e6:.1f} us/flow)")
    for flow in ordered:
        ofwire.flow_mod_cached(flow)
    t_cached = best(lambda: list(ofwire.bundle_chunks(
        1, [ofwire.flow_mod_cached(flow) for flow in ordered], len(ordered), 1)), 3)
    wire_bytes = sum(len(flow._wire or b"") for flow in ordered)
    print(f"vna.ofwire cached bytes + bundle pieces: {t_cached:.3f} s "
          f"({t_cached / len(flows) * 1e6:.1f} us/flow); cache holds {wire_bytes / 2**20:.1f} "
          f"MiB of flow_mod bytes ({wire_bytes / len(flows):.0f} B/flow)")

    # A flow dump as the switch sends it: one ofp_flow_stats per flow (spec 7.3.5.2).
    stats = struct.Struct("!HBxIIHHHH4xQQQ")
    body = b"".join(stats.pack(len(wire), flow.table, 1, 0, flow.priority, 0, 0, 0,
                               flow.cookie, 0, 0) + wire[48:]
                    for flow in ordered for wire in [flow._wire or b""])

    def oskn_dump() -> None:
        offset = 0
        while offset < len(body):
            offset += parser.OFPFlowStats.parser(body, offset).length

    t_parse = best(oskn_dump, 2)
    t_keys = best(lambda: flow_keys(body), 3)
    print(f"flow dump parse, os-ken OFPFlowStats: {t_parse:.3f} s; vna.switch.flow_keys: "
          f"{t_keys:.3f} s ({len(flows)} entries, {len(body) / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
