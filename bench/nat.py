"""NAT on the gateway (issue 12): TCP through SNAT and through a global address against
plain routing in the same run, packet-ins at steady state, and the first packet's cost.

    .venv/bin/python -m bench.nat [--quick] [--transports tunnel,mac2mac] [--seconds 4]
        [--rounds 3] [--samples 3]

One cloud per transport (`lab.cloud.Cloud`, built through the webapi), two hypervisors:

    h1: vm1 10.1.0.11 (nw-a)          h2: vm2 10.1.0.12 (nw-a)
    rl-1: 10.1.0.1 on nw-a, and if-rpub 172.16.0.4 on nw-pub (physical), owned by h1
          (the gateway datapath), route 172.16.0.0/24 through it
    nw-pub 172.16.0.0/24: a Linux bridge ("pub") with h1's and h2's port phys0 (host
          interfaces of the network) and the external host ext 172.16.0.100

vm1 sits on the gateway; vm2's traffic to the segment is forwarded (unrouted) to h1 over
the transport and routed there. Three modes, switched through the webapi:
  - routed: ext has a route 10.0.0.0/8 via 172.16.0.4, no translation;
  - snat: translation tr-snat (mode snat) on if-rpub, ext has no route to 10/8;
  - global: translation tr-st (static_address) with 172.16.0.50 <-> vm1 and
    172.16.0.51 <-> vm2, ext has no route to 10/8.
1. iperf3 TCP per mode and VM: VM -> ext (every mode) and ext -> VM (routed: the private
   address; global: the global address). The iperf3 server reports the client address it
   saw, which checks the translation of each run (`seen as`). Modes alternate, in reverse
   order every other round. Packet-ins (vna metrics) are read before and after each run;
   the datapath passes per packet come from `dpif-netdev/pmd-stats-show`.
2. Steady-state packet-ins: over all the runs, and per punting table (n_packets of the
   flows that send to the controller), which tells a data packet's MAC binding miss
   (ARP_RESOLVE) from the periodic binding refresh's ARP reply (ARP).
3. The first packet: the first ping from a fresh start (vm1 -> ext, before any traffic)
   and, per VM and sample, an external address the gateway has never resolved (an extra
   address on ext): the echo requests lost and the time to the first reply at a 10 ms
   ping interval, and the first TCP connect against the next one to the same address.
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
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from bench.common import (
    clear_datapath_stats,
    datapath_passes,
    log,
    machine_info,
    save_results,
    table,
)
from bench.dataplane import iperf_between, packet_ins
from bench.testbed import dump_flows_raw, wait_settled
from lab import Hypervisor, Lab, LinuxHost, Netns, Vm
from lab.cloud import Cloud
from lab.traffic import TcpListener, tcp_connect
from vna.pipeline import Table
from vnctl.api import Api

HOSTS = ("h1", "h2")
PUB = ipaddress.IPv4Network("172.16.0.0/24")
PUB_NET, PORT = "nw-pub", "phys0"
EXT, EXT_MAC = "172.16.0.100", "02:ee:00:00:00:64"
RPUB, RPUB_MAC = "172.16.0.4", "02:00:22:00:00:04"
PRIVATE = "10.0.0.0/8"
VMS = {  # name: (host, private address, global address)
    "vm1": ("h1", "10.1.0.11", "172.16.0.50"),
    "vm2": ("h2", "10.1.0.12", "172.16.0.51"),
}
MODES = ("routed", "snat", "global")
TARGET = 0.8
FRESH_BASE = 101  # first-packet samples use 172.16.0.101 onwards on ext
CONNECT_PORT = 5300
PING_INTERVAL = 0.002  # s; ping's minimum for root
TABLE_RE = re.compile(r"\btable=(\d+)")
N_PACKETS_RE = re.compile(r"\bn_packets=(\d+)")


@dataclass(frozen=True)
class Cell:
    """One iperf3 run: `vm` is the client (outbound) or the server (inbound, ext the
    client), reached at its private address (routed) or its global one."""

    mode: str
    vm: str
    inbound: bool

    @property
    def key(self) -> str:
        return f"{self.mode} {self.vm} {'in' if self.inbound else 'out'}"

    @property
    def baseline(self) -> Cell:
        return Cell("routed", self.vm, self.inbound)

    def expected_source(self) -> str:
        """The client address the server must see."""
        if self.inbound:
            return EXT
        return {"routed": VMS[self.vm][1], "snat": RPUB, "global": VMS[self.vm][2]}[self.mode]


PAIRS = tuple((vm, inbound) for vm in VMS for inbound in (False, True))
CELLS = tuple(Cell(mode, vm, inbound) for vm, inbound in PAIRS for mode in MODES
              if not (inbound and mode == "snat"))
Punts = dict[str, Counter[str]]


def schedule(round_: int) -> list[Cell]:
    """One round: each (VM, direction) runs its modes back to back, in the order that
    starts with the mode the previous one ended with (routed, snat, global; then global,
    routed; ...), so that A and B run seconds apart and the mode switches are few; every
    other round runs the whole sequence backwards."""
    out: list[Cell] = []
    for vm, inbound in PAIRS:
        cells = [c for c in CELLS if (c.vm, c.inbound) == (vm, inbound)]
        if out and out[-1].mode != cells[0].mode:
            cells.reverse()
        out += cells
    return out if round_ % 2 else out[::-1]


@dataclass
class World:
    cloud: Cloud
    ext: Netns
    mode: str = ""
    last: Punts = field(default_factory=dict)  # punts() after the last run

    @property
    def api(self) -> Api:
        assert self.cloud.api is not None
        return self.cloud.api

    def vm(self, name: str) -> Vm:
        return self.cloud.vms[name]

    @property
    def hvs(self) -> dict[str, Hypervisor]:
        return {name: host.hv for name, host in self.cloud.hosts.items()}


# ---------------------------------------------------------------------------- the lab

def build(lab: Lab, transport: str) -> World:
    cloud = Cloud(lab, transport=transport).start()
    for host in HOSTS:
        cloud.add_host(host)
    cloud.add_network("nw-a", "10.1.0.0/24")
    cloud.add_router("rl-1", {"nw-a": "10.1.0.1"})
    cloud.add_network(PUB_NET, str(PUB), mode="physical")
    segment = lab.add_underlay("pub", mtu=1500)
    for host in HOSTS:
        cloud.add_physical_port(host, segment, PUB_NET, PORT)
    ext = LinuxHost(lab, "ext")
    ext.attach(segment, f"{EXT}/{PUB.prefixlen}", mac=EXT_MAC)
    w = World(cloud, ext.netns)
    w.api.post("interfaces", uuid="if-rpub", mode="simulated", enable_routing=True,
               owner_datapath_uuid="dp-h1", network_uuid=PUB_NET, ipv4_address=RPUB,
               mac_address=RPUB_MAC)
    w.api.post("routes", uuid="r-pub", interface_uuid="if-rpub", network_uuid=PUB_NET,
               route_link_uuid="rl-1", ipv4_network=str(PUB.network_address),
               ipv4_prefix=PUB.prefixlen)
    for name, (host, address, _) in VMS.items():
        cloud.add_vm(host, name, "nw-a", address)
    set_mode(w, "routed")
    return w


def settle(w: World) -> None:
    for hv in w.hvs.values():
        wait_settled(hv)


def set_mode(w: World, mode: str) -> None:
    """Undo the current mode's translation or route, apply `mode`'s, wait until both
    switches hold the vnas' flows."""
    if mode == w.mode:
        return
    if w.mode == "routed":
        w.ext.ip("route", "del", PRIVATE)
    elif w.mode == "snat":
        w.api.delete("translations/tr-snat")
    elif w.mode == "global":
        w.api.delete("translations/tr-st")  # takes its static addresses along
    if mode == "routed":
        w.ext.add_route(PRIVATE, via=RPUB)
    elif mode == "snat":
        w.api.post("translations", uuid="tr-snat", interface_uuid="if-rpub", mode="snat")
    else:
        w.api.post("translations", uuid="tr-st", interface_uuid="if-rpub",
                   mode="static_address")
        for _, private, global_ in VMS.values():
            w.api.post("translations/tr-st/static_address", ingress_ipv4_address=global_,
                       egress_ipv4_address=private)
    w.mode = mode
    settle(w)


# ---------------------------------------------------------------------------- probes

def punts(w: World) -> Punts:
    """Per switch: the vna's packet-ins so far (`total`, its metric) and the packets the
    flows that send to the controller matched, by the flow's table."""
    ins = packet_ins(w.cloud)
    out: Punts = {}
    for name, hv in w.hvs.items():
        counts: Counter[str] = Counter(total=int(ins[name]))
        for line in dump_flows_raw(hv, stats=True):
            if "CONTROLLER" in line.upper() and (t := TABLE_RE.search(line)) \
                    and (n := N_PACKETS_RE.search(line)):
                counts[Table(int(t.group(1))).name] += int(n.group(1))
        out[name] = counts
    return out


def delta(now: Punts, before: Punts) -> dict[str, dict[str, int]]:
    """now - before, zeros left out."""
    return {h: dict(counts - before[h]) for h, counts in now.items()}


def added(deltas: Iterable[dict[str, dict[str, int]]]) -> dict[str, dict[str, int]]:
    out: dict[str, Counter[str]] = {h: Counter() for h in HOSTS}
    for d in deltas:
        for h, counts in d.items():
            out[h].update(counts)
    return {h: dict(c) for h, c in out.items()}


def run_cell(w: World, cell: Cell, seconds: int) -> dict[str, Any]:
    set_mode(w, cell.mode)
    start = punts(w)
    switched = delta(start, w.last)
    vm = w.vm(cell.vm)
    _, private, global_ = VMS[cell.vm]
    if cell.inbound:
        client, server = w.ext, vm.netns
        address = global_ if cell.mode == "global" else private
    else:
        client, server, address = vm.netns, w.ext, EXT
    clear_datapath_stats(w.hvs.values())
    result = iperf_between(client, server, address, seconds)
    w.last = punts(w)
    during = delta(w.last, start)
    result.update(passes=datapath_passes(w.hvs), loadavg=os.getloadavg()[0],
                  packet_ins={h: p.get("total", 0) for h, p in during.items()},
                  punts=during, punts_mode_switch=switched)
    if result["seen_as"] != cell.expected_source():
        raise RuntimeError(f"{cell.key}: the server saw {result['seen_as']}, "
                           f"expected {cell.expected_source()}")
    return result


@contextmanager
def fresh_address(w: World, index: int) -> Iterator[str]:
    """An address on ext that the gateway has never resolved; removed afterwards (so the
    vna's refresh of its binding gets no answer and no packet-in)."""
    address = str(PUB.network_address + FRESH_BASE + index)
    w.ext.add_addr("eth0", f"{address}/{PUB.prefixlen}")
    try:
        yield address
    finally:
        w.ext.ip("addr", "del", f"{address}/{PUB.prefixlen}", "dev", "eth0")


def first_ping(vm: Vm, address: str) -> dict[str, float]:
    """Echo requests every PING_INTERVAL until the first reply: how many were lost and
    the time from the first request to the first reply."""
    ping = vm.ping(address, count=int(2 / PING_INTERVAL), interval=PING_INTERVAL, wait=1,
                   deadline=3)
    if not ping.seqs:
        raise RuntimeError(f"{vm.name} -> {address}: no reply\n{ping.output}")
    lost = ping.seqs[0] - 1
    return {"lost": lost, "ms": lost * PING_INTERVAL * 1000 + ping.rtts_ms[0],
            "rtt_ms": statistics.median(ping.rtts_ms)}


def first_packet(w: World, samples: int) -> dict[str, Any]:
    """Fresh external addresses per VM: the first ping, the first TCP connect and the
    next (warm) one."""
    set_mode(w, "routed")
    out: dict[str, Any] = {}
    index = 0
    with TcpListener(w.ext, CONNECT_PORT):
        for name in VMS:
            vm = w.vm(name)
            rows: dict[str, list[Any]] = {"ping": [], "connect_ms": [], "warm_connect_ms": []}
            for _ in range(samples):
                with fresh_address(w, index) as address:
                    rows["ping"].append(first_ping(vm, address))
                with fresh_address(w, index + 1) as address:
                    first = tcp_connect(vm.netns, address, CONNECT_PORT, timeout=5)
                    warm = tcp_connect(vm.netns, address, CONNECT_PORT, timeout=5)
                    if not (first and warm):
                        raise RuntimeError(f"{name} -> {address}:{CONNECT_PORT}: "
                                           f"{first.output} / {warm.output}")
                    rows["connect_ms"].append(first.seconds * 1000)
                    rows["warm_connect_ms"].append(warm.seconds * 1000)
                index += 2
            out[name] = rows
            log(f"nat first packet {name}: {rows}")
    return out


# ---------------------------------------------------------------------------- runner

def run_transport(transport: str, seconds: int, rounds: int, samples: int) -> dict[str, Any]:
    with Lab() as lab:
        log(f"nat {transport}: building the cloud ({lab.prefix})")
        started = time.monotonic()
        w = build(lab, transport)
        res: dict[str, Any] = {"transport": transport, "seconds": seconds, "rounds": rounds,
                               "build_seconds": time.monotonic() - started}
        # The very first packet to ext: the gateway learns ext's MAC (a fresh start).
        start = punts(w)
        res["fresh_start"] = first_ping(w.vm("vm1"), EXT)
        w.vm("vm2").ping(EXT, count=1)  # h2's ARP for its gateway, before the timed runs
        w.last = punts(w)
        res["fresh_start"]["punts"] = delta(w.last, start)
        log(f"nat {transport}: built in {res['build_seconds']:.1f}s; first ping vm1 -> ext "
            f"{res['fresh_start']}")
        start, steady_started = w.last, time.monotonic()
        runs: dict[str, list[dict[str, Any]]] = {cell.key: [] for cell in CELLS}
        for round_ in range(1, rounds + 1):
            for cell in schedule(round_):
                result = run_cell(w, cell, seconds)
                runs[cell.key].append(result)
                log(f"nat {transport} round {round_} {cell.key}: {result['mbit_s']:.0f} "
                    f"Mbit/s, seen as {result['seen_as']}, passes {result['passes']}, "
                    f"punted {result['punts']}, on the mode switch "
                    f"{result['punts_mode_switch']}")
        every = [r for rs in runs.values() for r in rs]
        res["steady"] = {"seconds": time.monotonic() - steady_started,
                         "punts": delta(w.last, start),
                         "during_runs": added(r["punts"] for r in every),
                         "mode_switches": added(r["punts_mode_switch"] for r in every)}
        res["runs"] = runs
        res["median_mbit_s"] = {key: statistics.median(r["mbit_s"] for r in rs)
                                for key, rs in runs.items()}
        res["ratio"] = {cell.key: res["median_mbit_s"][cell.key]
                        / res["median_mbit_s"][cell.baseline.key]
                        for cell in CELLS if cell.mode != "routed"}
        # After the switch back to routed has been revalidated: OVS attributes a changed
        # datapath flow's unpushed counters to the rules of its new translation, which
        # can be a miss flow.
        set_mode(w, "routed")
        time.sleep(1)
        start = punts(w)
        res["first_packet"] = first_packet(w, samples)
        res["first_packet_punts"] = delta(punts(w), start)
        return res


def run(quick: bool, transports: tuple[str, ...] = ("tunnel",), seconds: int | None = None,
        rounds: int | None = None, samples: int | None = None) -> dict[str, Any]:
    seconds = seconds or (3 if quick else 4)
    rounds = rounds or (2 if quick else 3)
    samples = samples or (2 if quick else 3)
    started = time.monotonic()
    out = {"runs": [run_transport(t, seconds, rounds, samples) for t in transports]}
    out["seconds"] = time.monotonic() - started
    return out


# ---------------------------------------------------------------------------- report

def gbit(runs: list[dict[str, Any]]) -> str:
    mbits = [r["mbit_s"] for r in runs]
    return (f"{statistics.median(mbits) / 1000:.2f} "
            f"({min(mbits) / 1000:.2f}-{max(mbits) / 1000:.2f})")


def passes(cell: Cell, runs: list[dict[str, Any]]) -> str:
    """Median passes per packet on the hosts the cell's traffic crosses."""
    hosts = ("h1",) if VMS[cell.vm][0] == "h1" else HOSTS
    return "-".join(f"{statistics.median(r['passes'][h] for r in runs):.1f}" for h in hosts)


def report(res: dict[str, Any]) -> str:
    out = []
    for r in res["runs"]:
        t = r["transport"]
        rows = []
        for cell in CELLS:
            runs = r["runs"][cell.key]
            ratio = r["ratio"].get(cell.key)
            rows.append([cell.mode, f"{cell.vm} ({VMS[cell.vm][0]})",
                         f"ext -> {cell.vm}" if cell.inbound else f"{cell.vm} -> ext",
                         cell.expected_source(), gbit(runs),
                         "baseline" if ratio is None else
                         f"{ratio:.2f} {'met' if ratio >= TARGET else 'MISSED'}",
                         statistics.median(x["retransmits"] for x in runs), passes(cell, runs),
                         " ".join(f"{h}:{sum(x['packet_ins'][h] for x in runs):.0f}"
                                  for h in HOSTS)])
        out.append(table(f"8a. iperf3 TCP through NAT, transport {t}: median of {r['rounds']} "
                         f"runs of {r['seconds']} s (target: >= {TARGET:.2f} x routed, "
                         "same run, same VM and direction)",
                         ["mode", "VM (host)", "client -> server", "server saw",
                          "Gbit/s (range)", "ratio vs routed", "retransmits/run",
                          "datapath passes per packet, h1[-h2]", "packet-ins during runs"],
                         rows))
        s = r["steady"]
        runs = sum(len(rs) for rs in r["runs"].values())
        phases = ((f"steady state: during the {runs} iperf3 runs", s["during_runs"]),
                  ("steady state: between runs (mode switches)", s["mode_switches"]),
                  ("fresh start: vm1's first ping to ext", r["fresh_start"]["punts"]),
                  ("first-packet samples (8c)", r["first_packet_punts"]))
        out.append(table(f"8b. Packet-ins, transport {t}: {s['seconds']:.0f} s of runs after "
                         "ext's MAC was learned (target: 0 at steady state)",
                         ["phase", *(f"{h} packet-ins" for h in HOSTS),
                          *(f"{h} n_packets of punting flows, by table" for h in HOSTS)],
                         [[label, *(p[h].get("total", 0) for h in HOSTS),
                           *(", ".join(f"{k} {v}" for k, v in p[h].items() if k != "total")
                             or "-" for h in HOSTS)] for label, p in phases]))
        out.append("Packet-ins: the vna's `vnet_vna_packet_ins_total`. The n_packets of a "
                   "punting flow can grow with no punt: when a flow change makes OVS "
                   "re-translate a datapath flow, the counters it had not pushed yet go to "
                   "the rules of the new translation (after a static address is deleted, "
                   "the ARP_RESOLVE miss; the meter's packet_in_count and the packet-ins "
                   "stay put). Steady-state ARP punts are the binding refresh's replies "
                   "(one per 30 s).\n")
        fs, fp = r["fresh_start"], r["first_packet"]
        rows = [["vm1 (h1) -> ext, fresh start", fs["lost"], f"{fs['ms']:.1f}",
                 f"{fs['rtt_ms']:.2f}", "", ""]]
        for name, v in fp.items():
            rows.append([f"{name} ({VMS[name][0]}) -> unresolved address, {len(v['ping'])} "
                         "samples",
                         "/".join(str(p["lost"]) for p in v["ping"]),
                         "/".join(f"{p['ms']:.1f}" for p in v["ping"]),
                         f"{statistics.median(p['rtt_ms'] for p in v['ping']):.2f}",
                         "/".join(f"{x:.0f}" for x in v["connect_ms"]),
                         "/".join(f"{x:.0f}" for x in v["warm_connect_ms"])])
        out.append(table(f"8c. The first packet to an unresolved external address (MAC "
                         f"binding miss), transport {t}, pings every "
                         f"{PING_INTERVAL * 1000:.0f} ms",
                         ["from -> to", "echo requests lost", "ms to first reply",
                          "later RTT ms (median)", "first TCP connect ms",
                          "next TCP connect ms"], rows))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.nat",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="2 rounds of 3 s runs, 2 first-packet samples "
                             "(default: 3 of 4 s, 3 samples)")
    parser.add_argument("--transports", default="tunnel", help="tunnel, mac2mac or both")
    parser.add_argument("--seconds", type=int)
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--samples", type=int)
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("needs root (namespaces and Open vSwitch)")
    os.environ["PATH"] += os.pathsep + "/usr/sbin" + os.pathsep + "/sbin"
    res = {"machine": machine_info(),
           **run(args.quick, tuple(args.transports.split(",")), args.seconds, args.rounds,
                 args.samples)}
    text = report(res)
    path = save_results(f"nat-{time.strftime('%Y%m%dT%H%M%S')}", {**res, "report_markdown": text})
    print(text)
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
