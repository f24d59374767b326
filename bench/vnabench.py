"""vna benchmarks against real Open vSwitch: full sync, convergence, resync cost.

Each benchmark measures the project and the raw limit of the same switch in the same
run. See docs/performance.md for what is measured and how to read the numbers.

Topology per size N (one lab, removed on exit):
  - two real hypervisors h1, h2 (namespace + private OVS, netdev, VXLAN transport),
    each with its vna; h1 is the datapath under test;
  - R model-only datapaths (no OVS) with a host interface (underlay IP), so that
    interfaces they own are *remote vifs* for h1 and still produce flows there;
  - M = N/10 virtual networks, joined to h1 and h2;
  - N vif interfaces, 10 per network with one IP lease each: a handful are real VM
    namespaces plugged into h1/h2 (LOCAL_VMS), all others are owned by h2 or the
    model-only datapaths (remote vifs);
  - ROUTERS distributed routers, each joining two networks.
The model is written through vnmgr's RPC (the same path the webapi uses).
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import api_throughput, dataplane
from bench import services as services_bench
from bench.common import (
    RESULTS_DIR,
    desired_flows,
    log,
    machine_info,
    metric,
    metrics,
    percentile,
    table,
)
from lab import Hypervisor, Lab
from lab.services import ServiceHandle, Services
from vnet.messaging import RpcClient

OF_PORT = 6633
REMOTE_DATAPATHS = 8
ROUTERS = 4
UNDERLAY = ipaddress.IPv4Network("192.168.100.0/24")
UNDERLAY_NET = "nw-underlay"
CONV_NET = "nw-conv"
FULL_SYNC_RE = re.compile(
    r"^(\S+)Z .*full sync of (\w+): (\d+) desired, (\d+) installed, \+(\d+) -(\d+) in ([\d.]+)s"
)

BENCHMARKS = ("vna", "api", "dataplane", "services")  # vna: full sync, convergence, resync (1-3)
# services (6): DHCP/DNS answer time, and a VM flooding them (bench/services.py); not in
# the default run (it takes minutes at 10,000 interfaces): --only services.
DEFAULT = ("vna", "api", "dataplane")

# Local VMs: (name, hypervisor, network index, host index in network). vm1/vm2 are on
# h1 in network 0, vm3 on h2 in network 0: vm1->vm2 is local, vm1->vm3 crosses VXLAN.
LOCAL_VMS = [("vm1", "h1", 0, 0), ("vm2", "h1", 0, 1), ("vm3", "h2", 0, 2),
             ("vm4", "h1", 1, 0), ("vm5", "h1", 2, 0), ("vm6", "h2", 1, 1)]


# ---------------------------------------------------------------------------- helpers

def vm_rss_kib(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmHWM:", "VmRSS:")):
            key, value = line.split(":", 1)
            out[key] = int(value.split()[0])
    return out


def dump_flows_raw(hv: Hypervisor, bridge: str = "br-int", stats: bool = False) -> list[str]:
    args = ["--no-names", "dump-flows", bridge]
    if not stats:
        args.insert(0, "--no-stats")
    out = hv.ovs.ofctl(*args, timeout=120)
    return [ln.strip() for ln in out.splitlines() if "cookie=" in ln or "priority=" in ln]


def parse_ts(stamp: str) -> float:
    return dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f").replace(
        tzinfo=dt.UTC).timestamp()


def wait_full_sync(handle: ServiceHandle, offset: int, timeout: float) -> dict[str, Any]:
    """The first `full sync` line the vna writes after byte `offset` of its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not handle.alive():
            raise RuntimeError(f"{handle.name} died: {handle.log_text()[-2000:]}")
        with open(handle.log_path, "rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
        for line in text.splitlines():
            m = FULL_SYNC_RE.match(line)
            if m:
                return {"wall": parse_ts(m.group(1)), "desired": int(m.group(3)),
                        "installed": int(m.group(4)), "added": int(m.group(5)),
                        "deleted": int(m.group(6)), "seconds": float(m.group(7)),
                        "line": line}
        time.sleep(0.02)
    raise TimeoutError(f"no full sync from {handle.name} within {timeout}s")


class FlowMonitor:
    """`ovs-ofctl monitor` on a bridge: the switch itself reports every flow it adds,
    the moment the change is committed. We stamp each line as it arrives and wake
    whoever waits for a MAC address to appear in an added flow."""

    def __init__(self, hv: Hypervisor, bridge: str = "br-int") -> None:
        self.proc = subprocess.Popen(
            # stdbuf: ovs-ofctl's stdout is a pipe here, so it would be block-buffered.
            ["stdbuf", "-oL", "ovs-ofctl", "-O", "OpenFlow13", "monitor", bridge,
             "watch:!initial,!own"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
            env={**os.environ, **hv.ovs.env}, stdin=subprocess.DEVNULL)
        self._lock = threading.Lock()
        self._waiting: dict[str, threading.Event] = {}
        self._seen: dict[str, float] = {}
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def expect(self, mac: str) -> threading.Event:
        event = threading.Event()
        with self._lock:
            self._waiting[mac] = event
        return event

    def seen_at(self, mac: str) -> float | None:
        with self._lock:
            return self._seen.get(mac)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            now = time.monotonic()
            if "ADDED" not in line and "MODIFIED" not in line:
                continue
            with self._lock:
                for mac in [m for m in self._waiting if m in line]:
                    self._seen[mac] = now
                    self._waiting.pop(mac).set()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


# ---------------------------------------------------------------------------- the cloud

@dataclass
class Bed:
    lab: Lab
    n: int
    services: Services
    rpc: RpcClient
    hvs: dict[str, Hypervisor] = field(default_factory=dict)
    vnas: dict[str, ServiceHandle] = field(default_factory=dict)
    vms: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    populate_seconds: float = 0.0
    conv_datapath: str = ""  # the model-only datapath of the convergence interfaces

    def call(self, op: str, resource: str, target: str | None = None, **params: Any) -> Any:
        """A vnmgr write; `uuid=` in params names the row to create."""
        return self.rpc.call(op, resource, target, params, timeout_ms=60000)

    def start_vna(self, name: str) -> tuple[ServiceHandle, int]:
        """Start (or restart) the vna of `name`; returns it and its log offset at start."""
        log_path = self.services.run_dir / f"vna-{name}.log"
        offset = log_path.stat().st_size if log_path.exists() else 0
        handle = self.services.start_vna(self.hvs[name], f"vna{name}", of_port=OF_PORT,
                                         transport="tunnel", wait_connected=False,
                                         VNET_VNA_DATAPATH_TYPE="netdev")
        self.vnas[name] = handle
        return handle, offset


def network_cidr(i: int) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(f"10.{i // 256}.{i % 256}.0/24")


def build(lab: Lab, n: int) -> Bed:
    services = Services(lab)
    services.start_vnmgr()
    bed = Bed(lab, n, services, RpcClient(services.rpc_endpoint, 60000))
    started = time.monotonic()
    bed.call("create", "networks", uuid=UNDERLAY_NET, ipv4_network=str(UNDERLAY.network_address),
             ipv4_prefix=UNDERLAY.prefixlen, network_mode="physical")
    # Datapaths: two real hypervisors and REMOTE_DATAPATHS model-only ones.
    datapaths = []
    for index in range(1, 3 + REMOTE_DATAPATHS):
        real = index <= 2
        name = f"h{index}" if real else f"r{index - 2}"
        dpid = 0x0000BE4C00000000 + index
        ip = str(UNDERLAY.network_address + index)
        mac = f"02:fe:00:00:00:{index:02x}"
        if real:
            hv = lab.add_hypervisor(name, dpid)
            if "ul" not in bed.counts:
                bed.counts["ul"] = 1
                bed.underlay = lab.add_underlay()  # type: ignore[attr-defined]
            hv.attach_underlay(bed.underlay, f"{ip}/{UNDERLAY.prefixlen}",  # type: ignore
                               mode="br-phy", mac=mac)
            bed.hvs[name] = hv
        bed.call("create", "datapaths", uuid=f"dp-{name}", dpid=f"0x{dpid:016x}",
                 node_id=f"vna{name}")
        bed.call("create", "interfaces", uuid=f"if-{name}ul", mode="host",
                 owner_datapath_uuid=f"dp-{name}", port_name="ul0" if real else None,
                 mac_address=mac, network_uuid=UNDERLAY_NET, ipv4_address=ip)
        datapaths.append(f"dp-{name}")
    # Real hypervisors know each other's underlay MAC: no lost first packet.
    bed.hvs["h1"].seed_tunnel_neighbor(bed.hvs["h2"])
    bed.hvs["h2"].seed_tunnel_neighbor(bed.hvs["h1"])
    # Vifs of model-only datapaths: bound there by a port report on their behalf (no vna
    # runs for them), so every real datapath forwards to them. The last one is kept for
    # the convergence benchmark's interfaces.
    remote_owners = datapaths[2:-1] or datapaths[2:]
    claims: dict[str, list[str]] = {dp: [] for dp in remote_owners}

    networks = max(1, n // 10)
    local = {(net, host): (vm, hv) for vm, hv, net, host in LOCAL_VMS if net < networks}
    interfaces = 0
    for i in range(networks):
        cidr = network_cidr(i)
        nw = f"nw-{i:05d}"
        bed.call("create", "networks", uuid=nw, ipv4_network=str(cidr.network_address),
                 ipv4_prefix=24, network_mode="virtual")
        for hv in ("h1", "h2"):
            bed.call("create", "datapath_networks", datapath_uuid=f"dp-{hv}", network_uuid=nw,
                     broadcast_mac_address=f"02:fd:{int(hv[1]):02x}:{i >> 16 & 255:02x}:"
                                           f"{i >> 8 & 255:02x}:{i & 255:02x}",
                     interface_uuid=f"if-{hv}ul")
        for j in range(10):
            if interfaces >= n:
                break
            ip = str(cidr.network_address + 10 + j)
            mac = f"12:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}:00:{j:02x}"
            if (i, j) in local:
                vm, hv = local[(i, j)]
                bed.call("create", "interfaces", uuid=f"if-{vm}", mode="vif",
                         owner_datapath_uuid=f"dp-{hv}", port_name=vm, mac_address=mac,
                         network_uuid=nw, ipv4_address=ip)
                bed.vms[vm] = lab.add_vm(bed.hvs[hv], vm, mac, f"{ip}/24", iface_id=f"if-{vm}",
                                         mtu=1450)
            else:
                owner = remote_owners[(i * 10 + j) % len(remote_owners)]
                bed.call("create", "interfaces", uuid=f"if-{i:05d}x{j}", mode="vif",
                         owner_datapath_uuid=owner, mac_address=mac, network_uuid=nw,
                         ipv4_address=ip)
                claims[owner].append(f"if-{i:05d}x{j}")
            interfaces += 1
    for dp, uuids in claims.items():
        report_ports(bed, dp, uuids)
    # Routers: router k joins networks 2k and 2k+1 (gateway .1 on each).
    routers = 0
    for k in range(min(ROUTERS, networks // 2)):
        rl = f"rl-{k}"
        bed.call("create", "route_links", uuid=rl, mac_address=f"02:00:10:00:00:{k + 1:02x}")
        for pos, i in enumerate((2 * k, 2 * k + 1), start=1):
            cidr = network_cidr(i)
            port = f"if-rl{k}p{pos}"
            bed.call("create", "interfaces", uuid=port, mode="simulated",
                     network_uuid=f"nw-{i:05d}", mac_address=f"02:00:00:00:{k + 1:02x}:{pos:02x}",
                     ipv4_address=str(cidr.network_address + 1), enable_routing="true")
            bed.call("create", "routes", uuid=f"r-{k}x{pos}", interface_uuid=port,
                     network_uuid=f"nw-{i:05d}", route_link_uuid=rl,
                     ipv4_network=str(cidr.network_address), ipv4_prefix=24)
        routers += 1
    # The network the convergence benchmark adds interfaces to (spans h1 and h2).
    bed.call("create", "networks", uuid=CONV_NET, ipv4_network="10.250.0.0", ipv4_prefix=16,
             network_mode="virtual")
    for hv in ("h1", "h2"):
        bed.call("create", "datapath_networks", datapath_uuid=f"dp-{hv}", network_uuid=CONV_NET,
                 broadcast_mac_address=f"02:fc:{int(hv[1]):02x}:00:00:01",
                 interface_uuid=f"if-{hv}ul")
    bed.conv_datapath = datapaths[-1]
    bed.populate_seconds = time.monotonic() - started
    bed.counts = {"interfaces": interfaces, "local_vifs": len(bed.vms), "networks": networks,
                  "routers": routers, "datapaths": len(datapaths),
                  "model_only_datapaths": REMOTE_DATAPATHS}
    return bed


def report_ports(bed: Bed, datapath: str, uuids: list[str]) -> None:
    """The port report a vna would send for `datapath` (vnmgr.handlers.bindings): its
    complete set of claims, here one port per interface."""
    ports = [{"interface_uuid": u, "port_name": f"p{n}", "port_number": n + 1}
             for n, u in enumerate(uuids)]
    bed.call("report", "active_interfaces", datapath_uuid=datapath, ports=ports)


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
    deadline, last = time.monotonic() + 120, None
    while time.monotonic() < deadline:
        sample = metrics(hv)
        installed = len(dump_flows_raw(hv))
        state = (desired_flows(sample), metric(sample, "vnet_vna_flow_mods_sent_total"))
        if installed == state[0] and state == last:
            break
        last = state
        time.sleep(0.5)
    else:
        raise RuntimeError(f"h1 never converged: {installed} installed vs {last}")
    flows = dump_flows_raw(hv)
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
    }


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
    # Traffic first: local (vm1->vm2) and across the tunnel (vm1->vm3).
    for dst in ("vm2", "vm3"):
        result = vm1.ping(bed.vms[dst].ip, count=5, interval=0.1, wait=1)
        if not result.ok:
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
                        ("services", services_bench)):
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
    out.append(table("1. Full sync of an empty bridge (target: vna >= 80% of raw rate)",
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
                     "(target: p99 < 100 ms at 10,000)",
                     ["p50 ms", "p90 ms", "p99 ms", "max ms", "vnmgr RPC p50/p99 ms",
                      "h1 p50/p99 ms", "h2 p50/p99 ms"],
                     [[c["p50_ms"], c["p90_ms"], c["p99_ms"], c["max_ms"],
                       f"{c['rpc_p50_ms']:.1f}/{c['rpc_p99_ms']:.1f}",
                       f"{c['h1_p50_ms']:.1f}/{c['h1_p99_ms']:.1f}",
                       f"{c['h2_p50_ms']:.1f}/{c['h2_p99_ms']:.1f}"]]))
    r = res["resync"]
    out.append(table(f"3. vna restart with nothing changed, {res['convergence_n']} interfaces "
                     "(target: 0 flow_mods)",
                     ["log", "flow_mods sent", "flows with traffic", "counters reset",
                      "pings lost during restart"],
                     [[r["log_line"], r["flow_mods_sent_total"], r["flows_with_traffic"],
                       r["flows_counter_reset"], f"{r['ping_lost']}/{r['ping_sent']}"]]))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="N=1,000 only, 50 convergence calls; api: 1,000 interfaces; "
                             "dataplane: 3 s iperf3 runs")
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")],
                        help="override interface counts, e.g. 1000,10000")
    parser.add_argument("--calls", type=int, help="override convergence calls")
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
            log(f"N={n}: convergence {res['convergence']}")
            res["resync"] = bench_resync(bed)
            log(f"N={n}: resync {res['resync']}")
    if "api" in args.only:
        res["api"] = api_throughput.run(args.quick)
    if "dataplane" in args.only:
        res["dataplane"] = dataplane.run(args.quick)
    if "services" in args.only:
        res["services"] = services_bench.run(args.quick, args.sizes[-1] if args.sizes else None)
    res["finished"] = dt.datetime.now(dt.UTC).isoformat()
    text = report(res)
    res["report_markdown"] = text
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{time.strftime('%Y%m%dT%H%M%S')}{'-quick' if args.quick else ''}.json"
    path.write_text(json.dumps(res, indent=2, default=str))
    print()
    print(text)
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
