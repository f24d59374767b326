"""vna benchmarks against real Open vSwitch: full sync, convergence, resync cost.

Each benchmark measures the project and the raw limit of the same switch in the same
run. See docs/performance.md for what is measured and how to read the numbers.

The lab they run in is bench.testbed (topology in its docstring).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import ipaddress
import json
import os
import re
import statistics
import sys
import tempfile
import time
from typing import Any

from bench import agents as agents_bench
from bench import api_throughput, dataplane
from bench import nat as nat_bench
from bench import security_groups as security_groups_bench
from bench import services as services_bench
from bench.common import (
    RESULTS_DIR,
    log,
    machine_info,
    metric,
    metrics,
    percentile,
    save_results,
    table,
    vm_rss_kib,
)
from bench.testbed import (
    CONV_NET,
    OF_PORT,
    ROUTERS,
    Bed,
    FlowMonitor,
    build,
    dump_flows_raw,
    network_cidr,
    report_ports,
    wait_full_sync,
    wait_settled,
)
from lab import Hypervisor, Lab

# vna: full sync, convergence, resync (1-3); secgroups (7): bench/security_groups.py;
# nat (8): bench/nat.py; agents (9, issue 13 targets 4 and 6): bench/agents.py.
BENCHMARKS = ("vna", "api", "dataplane", "services", "secgroups", "nat", "agents")
# services (6): DHCP/DNS answer time, and a VM flooding them (bench/services.py); not in
# the default run (it takes minutes at 10,000 interfaces): --only services.
DEFAULT = ("vna", "api", "dataplane", "secgroups", "nat", "agents")


# ---------------------------------------------------------------------------- helpers

# ---------------------------------------------------------------------------- 1. full sync

def raw_replace_flows(hv: Hypervisor, flows: list[str], repeats: int) -> list[float]:
    """Seconds for `ovs-ofctl --bundle replace-flows` of `flows` onto an empty bridge."""
    hv.ovs.add_bridge("br-raw", 0x0000BE4C0000FFFF)
    hv.ovs.ofctl("del-flows", "br-raw")
    # The vna's punting flows name per-port meters: the raw bridge needs them too, or OVS
    # refuses the whole bundle (the meters are outside the timed replace-flows).
    for meter in sorted({int(m) for line in flows for m in re.findall(r"meter:(\d+)", line)}):
        hv.ovs.ofctl("add-meter", "br-raw", f"meter={meter},pktps,burst,band=type=drop,"
                     "rate=100,burst_size=100")
    with tempfile.NamedTemporaryFile("w", suffix=".flows", delete=False) as f:
        f.write("\n".join(flows) + "\n")
        path = f.name
    times = []
    try:
        for _ in range(repeats):
            hv.ovs.ofctl("del-flows", "br-raw")
            started = time.monotonic()
            hv.ovs.ofctl("--bundle", "replace-flows", "br-raw", path, timeout=600)
            times.append(time.monotonic() - started)
        count = len(dump_flows_raw(hv, "br-raw"))
        if count != len(flows):
            raise RuntimeError(f"raw replace-flows installed {count} of {len(flows)} flows")
    finally:
        os.unlink(path)
        hv.ovs.vsctl("--if-exists", "del-br", "br-raw")
    return times


def bench_full_sync(bed: Bed, raw_repeats: int) -> dict[str, Any]:
    hv = bed.hvs["h1"]
    assert not dump_flows_raw(hv), "h1 must start with an empty flow table"
    start_wall = time.time()
    handle, offset = bed.start_vna("h1")
    sync = wait_full_sync(handle, offset, timeout=900)
    hv.set_controller(f"tcp:127.0.0.1:{OF_PORT}")  # start_vna set it already; idempotent
    # The OVSDB port list can reach the agent after its full sync; wait until the switch
    # holds exactly what the agent computed and nothing more is being sent.
    flows = wait_settled(hv)
    sample = metrics(hv)
    rss = vm_rss_kib(handle.pid)
    raw = raw_replace_flows(hv, flows, raw_repeats)
    raw_best = min(raw)
    total = sync["wall"] - start_wall
    n_flows = sync["desired"]
    result = {
        "interfaces": bed.counts["interfaces"],
        "flows": n_flows,
        "flows_final": len(flows),
        "flow_mods_after_first_sync": int(metric(sample, "vnet_vna_flow_mods_sent_total"))
        - sync["added"] - sync["deleted"],
        "sync_seconds": sync["seconds"],
        "start_to_synced_seconds": total,
        "startup_overhead_seconds": total - sync["seconds"],
        "vna_flows_per_s_sync": n_flows / sync["seconds"],
        "vna_flows_per_s_from_start": n_flows / total,
        "raw_seconds": raw,
        "raw_flows_per_s": n_flows / raw_best,
        "ratio_sync": (n_flows / sync["seconds"]) / (n_flows / raw_best),
        "ratio_from_start": (n_flows / total) / (n_flows / raw_best),
        "vna_vmhwm_kib": rss.get("VmHWM"),
        "vna_vmrss_kib": rss.get("VmRSS"),
        "sync_us_per_interface": sync["seconds"] / bed.counts["interfaces"] * 1e6,
        "start_us_per_interface": total / bed.counts["interfaces"] * 1e6,
        "hwm_kib_per_interface": (rss.get("VmHWM") or 0) / bed.counts["interfaces"],
        "log_line": sync["line"].split("msg=", 1)[-1],
    }
    return result


# ---------------------------------------------------------------------------- 2. convergence

def bench_convergence(bed: Bed, calls: int) -> dict[str, Any]:
    monitors = {name: FlowMonitor(bed.hvs[name]) for name in ("h1", "h2")}
    time.sleep(0.5)  # let the monitors subscribe
    latencies, rpc_times, per_dp = [], [], {"h1": [], "h2": []}
    try:
        for k in range(calls):
            mac = f"16:00:00:00:{k >> 8 & 255:02x}:{k & 255:02x}"
            ip = str(ipaddress.IPv4Address("10.250.1.0") + k)
            events = {name: mon.expect(mac) for name, mon in monitors.items()}
            t0 = time.monotonic()
            # A VM interface is created and its port appears on a (model-only) hypervisor:
            # the time until both real datapaths forward to it.
            bed.call("create", "interfaces", uuid=f"if-conv{k}", mode="vif",
                     owner_datapath_uuid=bed.conv_datapath, mac_address=mac,
                     network_uuid=CONV_NET, ipv4_address=ip)
            report_ports(bed, bed.conv_datapath, [f"if-conv{i}" for i in range(k + 1)])
            rpc_times.append(time.monotonic() - t0)
            for name, event in events.items():
                if not event.wait(30):
                    raise TimeoutError(f"flows for {mac} never appeared on {name}")
            seen = {name: monitors[name].seen_at(mac) - t0 for name in monitors}
            for name, value in seen.items():
                per_dp[name].append(value)
            latencies.append(max(seen.values()))
            time.sleep(0.05)
    finally:
        for mon in monitors.values():
            mon.close()
    ms = [x * 1000 for x in latencies]
    return {
        "calls": calls,
        "p50_ms": percentile(ms, 50), "p90_ms": percentile(ms, 90),
        "p99_ms": percentile(ms, 99), "max_ms": max(ms), "mean_ms": statistics.mean(ms),
        "rpc_p50_ms": percentile([x * 1000 for x in rpc_times], 50),
        "rpc_p99_ms": percentile([x * 1000 for x in rpc_times], 99),
        "h1_p50_ms": percentile([x * 1000 for x in per_dp["h1"]], 50),
        "h1_p99_ms": percentile([x * 1000 for x in per_dp["h1"]], 99),
        "h2_p50_ms": percentile([x * 1000 for x in per_dp["h2"]], 50),
        "h2_p99_ms": percentile([x * 1000 for x in per_dp["h2"]], 99),
        # Each call, in order (the results file only): which calls make the tail, and on
        # which datapath, is the first question a missed p99 raises.
        "per_call_ms": {"rpc": [round(x * 1000, 2) for x in rpc_times],
                        **{name: [round(x * 1000, 2) for x in values]
                           for name, values in per_dp.items()}},
    }


# ---------------------------------------------------------------------------- 2b. arrival

def bench_arrival(bed: Bed, calls: int) -> dict[str, Any]:
    """A VM arriving on h2, whose slice does not hold its network: its port is plugged
    first (iface-id set, no interface yet), then the interface is created.  Timed from
    the create to h2's switch holding the flow of another vif of that network: vnmgr puts
    the interface in h2's slice (watched iface-id), h2's vna claims the port, vnmgr binds
    it there, sends h2 the network's rows, and h2 installs their flows."""
    hv = bed.hvs["h2"]
    monitor = FlowMonitor(hv)
    time.sleep(0.5)
    latencies = []
    networks = bed.counts["networks"]
    first = 2 * ROUTERS + 2  # networks no router joins to h2's VMs
    try:
        for k in range(min(calls, networks - first)):
            i = first + k
            cidr = network_cidr(i)
            name, mac = f"arr{k}", f"16:fc:00:00:{k >> 8 & 255:02x}:{k & 255:02x}"
            bed.lab.add_vm(hv, name, mac, f"{cidr.network_address + 200}/24",
                           iface_id=f"if-{name}", mtu=1450)
            peer = f"12:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}:00:00"
            event = monitor.expect(peer)
            t0 = time.monotonic()
            bed.call("create", "interfaces", uuid=f"if-{name}", mode="vif", mac_address=mac,
                     network_uuid=f"nw-{i:05d}", ipv4_address=str(cidr.network_address + 200))
            if not event.wait(30):
                raise TimeoutError(f"flows of nw-{i:05d} never appeared on h2")
            latencies.append((monitor.seen_at(peer) or t0) - t0)
            time.sleep(0.05)
    finally:
        monitor.close()
    ms = [x * 1000 for x in latencies]
    return {"calls": len(ms), "p50_ms": percentile(ms, 50), "p90_ms": percentile(ms, 90),
            "p99_ms": percentile(ms, 99), "max_ms": max(ms) if ms else 0.0}


# ---------------------------------------------------------------------------- 3. resync

def counters(hv: Hypervisor) -> dict[str, int]:
    """cookie/table/priority/match -> n_packets."""
    out = {}
    for line in dump_flows_raw(hv, stats=True):
        packets = re.search(r"n_packets=(\d+)", line)
        key = re.sub(r"(duration|n_packets|n_bytes|idle_age|hard_age)=[^,\s]+,?\s*", "", line)
        out[key.strip()] = int(packets.group(1)) if packets else 0
    return out


def bench_resync(bed: Bed) -> dict[str, Any]:
    hv = bed.hvs["h1"]
    vm1 = bed.vms["vm1"]
    # Traffic first: local (vm1->vm2) and across the tunnel (vm1->vm3). The first echo
    # may be lost to ARP resolution on a loaded machine (the previous phases' changes
    # still landing): a second round must then pass whole; losses are judged below.
    for dst in ("vm2", "vm3"):
        for _attempt in range(2):
            result = vm1.ping(bed.vms[dst].ip, count=5, interval=0.1, wait=1)
            if result.ok:
                break
        else:
            raise RuntimeError(f"vm1 cannot ping {dst}: {result.output}")
    before = counters(hv)
    pings = [vm1.start_ping(bed.vms[d].ip, count=80, interval=0.05) for d in ("vm2", "vm3")]
    time.sleep(0.3)
    old = bed.vnas["h1"]
    old.stop()
    handle, offset = bed.start_vna("h1")
    sync = wait_full_sync(handle, offset, timeout=600)
    time.sleep(1.0)
    sample = metrics(hv)
    loss = [p.result(timeout=60) for p in pings]
    after = counters(hv)
    with_traffic = {k: v for k, v in before.items() if v > 0}
    reset = [k for k, v in with_traffic.items() if after.get(k, -1) < v]
    return {
        "log_line": sync["line"].split("msg=", 1)[-1],
        "added": sync["added"], "deleted": sync["deleted"],
        "flow_mods_sent_total": int(metric(sample, "vnet_vna_flow_mods_sent_total")),
        "flows_with_traffic": len(with_traffic),
        "flows_counter_reset": len(reset),
        "reset_examples": reset[:3],
        "flows_before": len(before), "flows_after": len(after),
        "ping_lost": sum(p.transmitted - p.received for p in loss),
        "ping_sent": sum(p.transmitted for p in loss),
        "resync_seconds": sync["seconds"],
    }


# ---------------------------------------------------------------------------- report

def report(res: dict[str, Any]) -> str:
    m = res["machine"]
    out = [f"Machine: {m['cores']} cores ({m['cpu']}), {m['ovs']}, kernel {m['kernel']}, "
           f"Python {m['python']}; load average at start {m['loadavg_at_start'][0]:.2f} "
           f"(shared machine: other engineers' tests were running).", ""]
    if res.get("full_sync"):
        out.append(report_vna(res))
    for key, module in (("api", api_throughput), ("dataplane", dataplane),
                        ("services", services_bench), ("secgroups", security_groups_bench),
                        ("nat", nat_bench), ("agents", agents_bench)):
        if key in res:
            out.append(module.report(res[key]))
    return "\n".join(out)


def report_vna(res: dict[str, Any]) -> str:
    out = []
    fs = res["full_sync"]
    rows = []
    for r in fs:
        rows.append([r["interfaces"], r["flows"], r["sync_seconds"], r["start_to_synced_seconds"],
                     r["vna_flows_per_s_sync"], r["raw_flows_per_s"],
                     f"{r['ratio_sync']:.0%}", f"{r['ratio_from_start']:.0%}",
                     r["vna_vmhwm_kib"] // 1024, r["sync_us_per_interface"],
                     r["start_us_per_interface"]])
    out.append(table("1. Full sync of an empty bridge (targets: vna >= 80% of the raw rate at "
                     "10,000 and 100,000 interfaces; peak RSS <= 150 MiB at 10,000)",
                     ["interfaces", "flows", "vna sync s", "vna start->synced s",
                      "vna flows/s (sync)", "raw flows/s", "ratio (sync)",
                      "ratio (from start)", "peak RSS MiB", "sync us/iface",
                      "start us/iface"], rows))
    if len(fs) > 1:
        a, b = fs[0], fs[-1]
        out.append(f"Flatness {a['interfaces']} -> {b['interfaces']} interfaces: sync cost per "
                   f"interface x{b['sync_us_per_interface'] / a['sync_us_per_interface']:.2f}, "
                   f"start-to-synced per interface "
                   f"x{b['start_us_per_interface'] / a['start_us_per_interface']:.2f}, "
                   f"raw per flow x{(1 / b['raw_flows_per_s']) / (1 / a['raw_flows_per_s']):.2f}"
                   f" (1.00 = flat).\n")
    c = res["convergence"]
    out.append(table(f"2. Convergence at {res['convergence_n']} interfaces, {c['calls']} calls "
                     "(target: p99 < 100 ms at 100,000)",
                     ["p50 ms", "p90 ms", "p99 ms", "max ms", "vnmgr RPC p50/p99 ms",
                      "h1 p50/p99 ms", "h2 p50/p99 ms"],
                     [[c["p50_ms"], c["p90_ms"], c["p99_ms"], c["max_ms"],
                       f"{c['rpc_p50_ms']:.1f}/{c['rpc_p99_ms']:.1f}",
                       f"{c['h1_p50_ms']:.1f}/{c['h1_p99_ms']:.1f}",
                       f"{c['h2_p50_ms']:.1f}/{c['h2_p99_ms']:.1f}"]]))
    if a := res.get("arrival"):
        out.append(table(f"2b. A VM arriving on a datapath without its network, "
                         f"{res['convergence_n']} interfaces, {a['calls']} arrivals "
                         "(target: p99 < 100 ms)",
                         ["p50 ms", "p90 ms", "p99 ms", "max ms"],
                         [[a["p50_ms"], a["p90_ms"], a["p99_ms"], a["max_ms"]]]))
    r = res["resync"]
    out.append(table(f"3. vna restart with nothing changed, {res['convergence_n']} interfaces "
                     "(targets: 0 flow_mods; <= 0.5 s at 10,000)",
                     ["log", "flow_mods sent", "flows with traffic", "counters reset",
                      "pings lost during restart"],
                     [[r["log_line"], r["flow_mods_sent_total"], r["flows_with_traffic"],
                       r["flows_counter_reset"], f"{r['ping_lost']}/{r['ping_sent']}"]]))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="N=1,000 only, 50 convergence calls; api: 1,000 interfaces; "
                             "dataplane: 3 s iperf3 runs; agents: 100 agents, 1,000 interfaces")
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")],
                        help="override interface counts, e.g. 1000,10000")
    parser.add_argument("--calls", type=int, help="override convergence calls")
    parser.add_argument("--agents", type=int,
                        help="agents: simulated agents (datapaths); default 1,000, --quick 100 "
                             "(interfaces: the last of --sizes, else 10,000 / 1,000)")
    parser.add_argument("--save-snapshot", action="store_true",
                        help="write each size's model to bench/results/snapshot-N.json.gz "
                             "(input for python -m bench.micro)")
    parser.add_argument("--only", type=lambda s: s.split(","), default=list(DEFAULT),
                        help=f"comma-separated subset of {','.join(BENCHMARKS)} (default: "
                             f"{','.join(DEFAULT)})")
    args = parser.parse_args(argv)
    if unknown := set(args.only) - set(BENCHMARKS):
        parser.error(f"--only: unknown {','.join(sorted(unknown))}; choose from {BENCHMARKS}")
    if os.geteuid() != 0:
        parser.error("needs root (namespaces and Open vSwitch)")
    os.environ["PATH"] += os.pathsep + "/usr/sbin" + os.pathsep + "/sbin"
    sizes = args.sizes or ([1000] if args.quick else [1000, 10000])
    calls = args.calls or (50 if args.quick else 200)
    res: dict[str, Any] = {"started": dt.datetime.now(dt.UTC).isoformat(),
                           "mode": "quick" if args.quick else "full", "machine": machine_info(),
                           "sizes": sizes, "only": args.only, "full_sync": []}
    log(f"machine: {res['machine']}")
    for i, n in enumerate(sizes if "vna" in args.only else []):
        last = i == len(sizes) - 1
        with Lab() as lab:
            log(f"N={n}: building the model (vnmgr RPC) and the lab {lab.prefix}")
            bed = build(lab, n)
            log(f"N={n}: {bed.counts} in {bed.populate_seconds:.1f}s")
            if args.save_snapshot:
                RESULTS_DIR.mkdir(parents=True, exist_ok=True)
                with gzip.open(RESULTS_DIR / f"snapshot-{n}.json.gz", "wt") as f:
                    json.dump(bed.rpc.call("snapshot"), f)
            fs = bench_full_sync(bed, raw_repeats=3)
            fs["populate_seconds"] = bed.populate_seconds
            fs["counts"] = bed.counts
            res["full_sync"].append(fs)
            log(f"N={n}: full sync {fs['log_line']}; start->synced "
                f"{fs['start_to_synced_seconds']:.2f}s; raw {min(fs['raw_seconds']):.3f}s; "
                f"ratio {fs['ratio_sync']:.0%} (sync) {fs['ratio_from_start']:.0%} (from start)")
            if not last:
                continue
            handle, offset = bed.start_vna("h2")
            wait_full_sync(handle, offset, timeout=900)
            log(f"N={n}: convergence, {calls} calls")
            res["convergence_n"] = n
            res["convergence"] = bench_convergence(bed, calls)
            log(f"N={n}: convergence " + str({k: v for k, v in res["convergence"].items()
                                                  if k != "per_call_ms"}))
            res["arrival"] = bench_arrival(bed, min(calls, 50))
            log(f"N={n}: arrival {res['arrival']}")
            res["resync"] = bench_resync(bed)
            log(f"N={n}: resync {res['resync']}")
    if "api" in args.only:
        res["api"] = api_throughput.run(args.quick)
    if "dataplane" in args.only:
        res["dataplane"] = dataplane.run(args.quick)
    if "services" in args.only:
        res["services"] = services_bench.run(args.quick, args.sizes[-1] if args.sizes else None)
    if "secgroups" in args.only:
        res["secgroups"] = security_groups_bench.run(args.quick)
    if "nat" in args.only:
        res["nat"] = nat_bench.run(args.quick)
    if "agents" in args.only:
        res["agents"] = agents_bench.run(args.quick, args.agents,
                                         args.sizes[-1] if args.sizes else None)
    res["finished"] = dt.datetime.now(dt.UTC).isoformat()
    text = report(res)
    res["report_markdown"] = text
    path = save_results(f"{time.strftime('%Y%m%dT%H%M%S')}{'-quick' if args.quick else ''}",
                        res)
    print()
    print(text)
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
