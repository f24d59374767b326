"""Security groups at scale (issue 11): flow growth, member convergence, and TCP through a
stateful rule.

    .venv/bin/python -m bench.security_groups [--quick] [--members 250,500,1000]
        [--rules 10,20] [--calls 50] [--seconds 5] [--rounds 3]

One lab, bench.testbed's (both hypervisors with their vna, model-only datapaths whose
vifs are bound by a port report), sized to hold the largest group, plus the webapi for
the timed writes:
  - sg-web: R tcp rules (`tcp:<8000+i>:172.16.<i>.0/24`, a port and a CIDR of their
    own each), members vm5 (h1) and N remote vifs spread over the model-only datapaths;
  - sg-db: `tcp:5432:sg-web`, members vm4 (h1) and vm6 (h2). It names sg-web, so every
    datapath with an sg-db member needs one source-address flow per sg-web member.
1. Flow growth: for each N and R, the flows h1's and h2's switches hold in the firewall
   tables (dump-flows once the vna has settled), against N x R.
2. Member convergence: with the largest group in place, each call creates an interface
   (webapi), reports its port on a model-only datapath (vnmgr RPC, as its vna would), and
   joins it to sg-web (webapi). The clock stops when its source-address clause flow
   (`nw_src=<address>`) is committed on h1 and on h2 (`ovs-ofctl monitor`).
3. iperf3 TCP vm1 -> vm2 (h1 -> h1) and vm1 -> vm3 (h1 -> h2, VXLAN): without groups,
   with the server in sg-iperf (`tcp:5201:<vm1's network>`), and with the client in a
   group too (sg-client, no rules: only replies reach it). The modes alternate, in
   reverse order every other round, so a load change on the shared machine hits each
   alike.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import statistics
import sys
import time
from collections import Counter
from typing import Any

from bench.common import (
    clear_datapath_stats,
    datapath_passes,
    log,
    machine_info,
    percentile,
    save_results,
    table,
)
from bench.dataplane import IPERF_PORT, iperf
from bench.testbed import (
    CONV_NET,
    LOCAL_VMS,
    Bed,
    FlowMonitor,
    build,
    network_cidr,
    report_ports,
    wait_full_sync,
    wait_settled,
)
from lab import Lab
from vna.pipeline import Table
from vnctl.api import Api

ACL_TABLES = frozenset({Table.FROM_VM_CT, Table.FROM_VM_ACL, Table.FROM_VM_COMMIT,
                        Table.TO_VM_CT, Table.TO_VM_ACL, Table.TO_VM_COMMIT})
TABLE_RE = re.compile(r"\btable=(\d+)")
HOSTS = ("h1", "h2")
WEB, DB, IPERF_SG, CLIENT_SG = "sg-web", "sg-db", "sg-iperf", "sg-client"
# Local VMs in the groups of 1 and 2 (bench.testbed.LOCAL_VMS): vm5 puts sg-web's rules
# on h1; vm4 and vm6 put sg-db (which names sg-web) on h1 and h2.
FIXED_MEMBERS = (("if-vm5", WEB), ("if-vm4", DB), ("if-vm6", DB))
# 3: (label, client, server, switches on the path); vm1, vm2 on h1, vm3 on h2, all in
# network 0.
PAIRS = (("h1 -> h1", "vm1", "vm2", ("h1",)), ("h1 -> h2 (VXLAN)", "vm1", "vm3", HOSTS))
MODES: dict[str, tuple[tuple[str, str], ...]] = {
    "none": (),
    "server": (("if-vm2", IPERF_SG), ("if-vm3", IPERF_SG)),
    "both": (("if-vm2", IPERF_SG), ("if-vm3", IPERF_SG), ("if-vm1", CLIENT_SG)),
}


# ---------------------------------------------------------------------------- helpers

def web_rules(count: int) -> str:
    return "\n".join(f"tcp:{8000 + i}:172.16.{i}.0/24" for i in range(count))


def remote_vifs(n: int) -> list[str]:
    """The remote vifs bench.testbed.build(lab, n) creates, in creation order."""
    local = {(net, host) for _, _, net, host in LOCAL_VMS}
    return [f"if-{i:05d}x{j}" for i in range(n // 10) for j in range(10)
            if (i, j) not in local]


def join(bed: Bed, interface: str, group: str) -> None:
    bed.call("create", "interface_security_groups", interface_uuid=interface,
             security_group_uuid=group)


def acl_flows(flows: list[str]) -> Counter[int]:
    """Firewall flows per table (the six tables of vna/features/acl.py)."""
    tables = (int(m.group(1)) if (m := TABLE_RE.search(ln)) else 0 for ln in flows)
    return Counter(t for t in tables if t in ACL_TABLES)


def settle(bed: Bed) -> dict[str, list[str]]:
    return {name: wait_settled(bed.hvs[name]) for name in HOSTS}


def ms_stats(seconds: list[float]) -> dict[str, float]:
    ms = [x * 1000 for x in seconds]
    return {"p50_ms": percentile(ms, 50), "p90_ms": percentile(ms, 90),
            "p99_ms": percentile(ms, 99), "max_ms": max(ms), "mean_ms": statistics.mean(ms)}


# ---------------------------------------------------------------------------- 1. flow growth

def bench_growth(bed: Bed, members: list[int], rules: list[int]) -> dict[str, Any]:
    """Flow counts per (members, rules); leaves sg-web with max(members), max(rules)."""
    base = settle(bed)
    out: dict[str, Any] = {"without_groups": {n: {"total": len(f), "acl": sum(
        acl_flows(f).values())} for n, f in base.items()}, "points": []}
    bed.call("create", "security_groups", uuid=WEB, display_name="web", rules=web_rules(0))
    bed.call("create", "security_groups", uuid=DB, display_name="db", rules=f"tcp:5432:{WEB}")
    for interface, group in FIXED_MEMBERS:
        join(bed, interface, group)
    vifs = remote_vifs(bed.n)
    if len(vifs) < max(members):
        raise ValueError(f"the bed holds {len(vifs)} remote vifs, fewer than {max(members)}")
    joined = 0
    for n in sorted(members):
        started = time.monotonic()
        for interface in vifs[joined:n]:
            join(bed, interface, WEB)
        joined = n
        log(f"secgroups: {n} members in sg-web ({time.monotonic() - started:.1f}s)")
        for r in sorted(rules):
            started = time.monotonic()
            bed.call("update", "security_groups", WEB, rules=web_rules(r))
            flows = settle(bed)
            point: dict[str, Any] = {"members": n, "rules": r,
                                     "settle_seconds": time.monotonic() - started}
            for name, hv_flows in flows.items():
                per_table = acl_flows(hv_flows)
                point[name] = {"total": len(hv_flows), "acl": sum(per_table.values()),
                               "per_table": {Table(t).name: c
                                             for t, c in sorted(per_table.items())}}
            out["points"].append(point)
            log(f"secgroups: N={n} R={r}: h1 {point['h1']['acl']} firewall flows "
                f"({point['h1']['total']} in all), h2 {point['h2']['acl']}")
    by = {(p["members"], p["rules"]): p["h1"]["acl"] for p in out["points"]}
    n_lo, n_hi, r_lo, r_hi = min(members), max(members), min(rules), max(rules)
    if n_hi > n_lo:
        out["per_member"] = (by[n_hi, r_hi] - by[n_lo, r_hi]) / (n_hi - n_lo)
    if r_hi > r_lo:
        out["per_rule"] = (by[n_hi, r_hi] - by[n_hi, r_lo]) / (r_hi - r_lo)
    return out


# ---------------------------------------------------------------------------- 2. convergence

def bench_join(bed: Bed, api: Api, calls: int) -> dict[str, Any]:
    monitors = {name: FlowMonitor(bed.hvs[name]) for name in HOSTS}
    time.sleep(0.5)  # let the monitors subscribe
    from_join: dict[str, list[float]] = {name: [] for name in HOSTS}
    from_create: list[float] = []
    writes: dict[str, list[float]] = {"create": [], "report": [], "join": []}
    uuids: list[str] = []
    try:
        for k in range(calls):
            ip = str(ipaddress.IPv4Address("10.250.2.0") + k)
            uuid = f"if-sgm{k}"
            # The clause flow's match ends with the address (`...,nw_src=10.250.2.1 actions`).
            events = {name: mon.expect(f"nw_src={ip} ") for name, mon in monitors.items()}
            t0 = time.monotonic()
            api.post("interfaces", uuid=uuid, mode="vif", owner_datapath_uuid=bed.conv_datapath,
                     mac_address=f"16:00:00:02:{k >> 8 & 255:02x}:{k & 255:02x}",
                     network_uuid=CONV_NET, ipv4_address=ip)
            t1 = time.monotonic()
            uuids.append(uuid)
            report_ports(bed, bed.conv_datapath, uuids)
            t2 = time.monotonic()
            api.post(f"interfaces/{uuid}/security_groups/{WEB}")
            t3 = time.monotonic()
            writes["create"].append(t1 - t0)
            writes["report"].append(t2 - t1)
            writes["join"].append(t3 - t2)
            for name, event in events.items():
                if not event.wait(30):
                    raise TimeoutError(f"the clause flow of {ip} never appeared on {name}")
            seen = {name: monitors[name].seen_at(f"nw_src={ip} ") or 0.0 for name in HOSTS}
            for name in HOSTS:
                from_join[name].append(seen[name] - t2)
            from_create.append(max(seen.values()) - t0)
            time.sleep(0.05)
    finally:
        for mon in monitors.values():
            mon.close()
    worst = [max(values) for values in zip(*from_join.values(), strict=True)]
    return {"calls": calls, "join": ms_stats(worst),
            "per_datapath": {name: ms_stats(values) for name, values in from_join.items()},
            "from_create": ms_stats(from_create),
            "writes": {name: ms_stats(values) for name, values in writes.items()}}


# ---------------------------------------------------------------------------- 3. iperf3

def set_members(bed: Bed, api: Api, now: set[tuple[str, str]],
                wanted: set[tuple[str, str]]) -> None:
    for interface, group in sorted(now - wanted):
        api.delete(f"interfaces/{interface}/security_groups/{group}")
    for interface, group in sorted(wanted - now):
        api.post(f"interfaces/{interface}/security_groups/{group}")
    settle(bed)


def bench_iperf(bed: Bed, api: Api, seconds: int, rounds: int) -> dict[str, Any]:
    bed.call("create", "security_groups", uuid=IPERF_SG, display_name="iperf",
             rules=f"tcp:{IPERF_PORT}:{network_cidr(0)}")
    bed.call("create", "security_groups", uuid=CLIENT_SG, display_name="client")
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        mode: {label: [] for label, *_ in PAIRS} for mode in MODES}
    now: set[tuple[str, str]] = set()
    for round_ in range(1, rounds + 1):
        # none, server, both, then both, server, none: a drift of the machine's load
        # over the run weighs on every mode alike.
        for mode in list(MODES)[::1 if round_ % 2 else -1]:
            members = MODES[mode]
            set_members(bed, api, now, set(members))
            now = set(members)
            for label, client, server, _ in PAIRS:
                clear_datapath_stats(bed.hvs.values())
                result = iperf(bed.vms[client], bed.vms[server], seconds)
                result.update(passes=datapath_passes(bed.hvs), loadavg=os.getloadavg()[0])
                runs[mode][label].append(result)
                log(f"secgroups iperf round {round_} {mode} {label}: "
                    f"{result['mbit_s']:.0f} Mbit/s, datapath passes per packet "
                    f"{result['passes']}")
    set_members(bed, api, now, set())
    median = {mode: {label: statistics.median(r["mbit_s"] for r in rs)
                     for label, rs in by_pair.items()} for mode, by_pair in runs.items()}
    return {"seconds": seconds, "rounds": rounds, "runs": runs, "median_mbit_s": median,
            "ratio": {mode: {label: median[mode][label] / median["none"][label]
                             for label in median[mode]} for mode in MODES if mode != "none"}}


# ---------------------------------------------------------------------------- runner

def run(quick: bool, members: list[int] | None = None, rules: list[int] | None = None,
        calls: int | None = None, seconds: int | None = None,
        rounds: int | None = None) -> dict[str, Any]:
    members = members or [250, 500, 1000]
    rules = rules or [10, 20]
    calls = calls or (30 if quick else 50)
    seconds = seconds or (3 if quick else 4)
    rounds = rounds or (2 if quick else 4)
    res: dict[str, Any] = {"members": members, "rules": rules}
    with Lab() as lab:
        started = time.monotonic()
        # 10 vifs per network, LOCAL_VMS among them: room for the largest group.
        bed = build(lab, (max(members) + len(LOCAL_VMS) + 9) // 10 * 10)
        for name in HOSTS:
            handle, offset = bed.start_vna(name)
            wait_full_sync(handle, offset, timeout=300)
        bed.services.start_webapi()
        api = Api(bed.services.webapi_url)
        res["counts"] = bed.counts
        res["build_seconds"] = time.monotonic() - started
        log(f"secgroups: lab {lab.prefix} with {bed.counts} in {res['build_seconds']:.1f}s")
        res["growth"] = bench_growth(bed, members, rules)
        res["convergence"] = bench_join(bed, api, calls)
        log(f"secgroups: member convergence {res['convergence']['join']}")
        res["iperf"] = bench_iperf(bed, api, seconds, rounds)
        res["seconds"] = time.monotonic() - started
    return res


def report(res: dict[str, Any]) -> str:
    g = res["growth"]
    out = []
    rows = [["none", "", g["without_groups"]["h1"]["acl"], g["without_groups"]["h1"]["total"],
             g["without_groups"]["h2"]["acl"], ""]]
    rows += [[p["members"], p["rules"], p["h1"]["acl"], p["h1"]["total"], p["h2"]["acl"],
              p["members"] * p["rules"]] for p in g["points"]]
    out.append(table("7a. Firewall flows: sg-web with N members and R rules, named by sg-db "
                     "(target: linear in members + rules)",
                     ["sg-web members N", "rules R", "h1 firewall flows", "h1 all flows",
                      "h2 firewall flows", "N x R (not linear)"], rows))
    out.append(f"h1: +{g.get('per_member', float('nan')):.2f} flows per member, "
               f"+{g.get('per_rule', float('nan')):.2f} per rule (firewall tables "
               f"{', '.join(t.name for t in sorted(ACL_TABLES))}).\n")
    c = res["convergence"]
    j, pd, fc, w = c["join"], c["per_datapath"], c["from_create"], c["writes"]
    out.append(table(f"7b. A member joins sg-web ({max(res['members'])} members, "
                     f"{max(res['rules'])} rules), {c['calls']} calls "
                     "(target: p99 < 100 ms on every datapath)",
                     ["join -> both p50 ms", "p90 ms", "p99 ms", "max ms", "h1 p50/p99 ms",
                      "h2 p50/p99 ms", "create -> both p50/p99 ms",
                      "webapi join p50/p99 ms"],
                     [[j["p50_ms"], j["p90_ms"], j["p99_ms"], j["max_ms"],
                       f"{pd['h1']['p50_ms']:.1f}/{pd['h1']['p99_ms']:.1f}",
                       f"{pd['h2']['p50_ms']:.1f}/{pd['h2']['p99_ms']:.1f}",
                       f"{fc['p50_ms']:.1f}/{fc['p99_ms']:.1f}",
                       f"{w['join']['p50_ms']:.1f}/{w['join']['p99_ms']:.1f}"]]))
    ip = res["iperf"]
    rows = []
    for label, _, _, hosts in PAIRS:
        row: list[Any] = [label]
        for mode in MODES:
            mbits = [r["mbit_s"] for r in ip["runs"][mode][label]]
            row.append(f"{ip['median_mbit_s'][mode][label] / 1000:.2f} "
                       f"({min(mbits) / 1000:.2f}-{max(mbits) / 1000:.2f})")
        row += [f"{ip['ratio'][mode][label]:.2f}" for mode in MODES if mode != "none"]
        row.append(" / ".join("-".join(f"{statistics.median(r['passes'][h] for r in rs):.1f}"
                                       for h in hosts)
                              for rs in (ip["runs"][mode][label] for mode in MODES)))
        rows.append(row)
    out.append(table(f"7c. iperf3 TCP through a stateful rule, median of {ip['rounds']} runs "
                     f"of {ip['seconds']} s (target: >= 0.80 x without groups)",
                     ["path", "no groups Gbit/s (range)", "server filtered Gbit/s",
                      "both filtered Gbit/s", "ratio server/none", "ratio both/none",
                      "datapath passes per packet, h1[-h2]: none / server / both"], rows))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    def ints(text: str) -> list[int]:
        return [int(x) for x in text.split(",")]

    parser = argparse.ArgumentParser(prog="python -m bench.security_groups",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="30 calls, 2 rounds of 3 s iperf3 runs (default: 50, 4 of 4 s)")
    parser.add_argument("--members", type=ints, help="sg-web sizes, e.g. 250,500,1000")
    parser.add_argument("--rules", type=ints, help="sg-web rule counts, e.g. 10,20")
    parser.add_argument("--calls", type=int)
    parser.add_argument("--seconds", type=int)
    parser.add_argument("--rounds", type=int)
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("needs root (namespaces and Open vSwitch)")
    os.environ["PATH"] += os.pathsep + "/usr/sbin" + os.pathsep + "/sbin"
    res = {"machine": machine_info(),
           **run(args.quick, args.members, args.rules, args.calls, args.seconds, args.rounds)}
    text = report(res)
    path = save_results(f"secgroups-{time.strftime('%Y%m%dT%H%M%S')}",
                        {**res, "report_markdown": text})
    print(text)
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
