"""Helpers shared by the benchmarks: logging, machine facts, vna metrics, statistics,
Markdown tables and the results file. It imports no benchmark module, so any of them can
import it (the runner, bench.vnabench, imports the others; none imports it back). The lab
the vna benchmarks share is bench.testbed, which builds on this module."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lab import Hypervisor

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
METRICS_PORT = 9105  # vna's default [vna] metrics_port (etc/wakame-vnet/vna.conf)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def machine_info() -> dict[str, Any]:
    ovs = subprocess.run(["ovs-vswitchd", "--version"], capture_output=True, text=True)
    cpu = ""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next((ln.split(":", 1)[1].strip() for ln in lines
                    if ln.startswith("model name")), "")
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "ovs": ovs.stdout.splitlines()[0].strip() if ovs.stdout else "?",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_at_start": os.getloadavg(),
        "shared_machine": True,
    }


# ---------------------------------------------------------------------------- vna metrics

def metrics(hv: Hypervisor) -> dict[str, float]:
    """vna's Prometheus samples, read inside the hypervisor's namespace."""
    code = ("import urllib.request as u;print(u.urlopen("
            f"'http://127.0.0.1:{METRICS_PORT}/metrics',timeout=5).read().decode())")
    text = hv.netns.run(sys.executable, "-c", code).stdout
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def desired_flows(sample: dict[str, float]) -> int:
    return int(sum(v for k, v in sample.items() if k.startswith("vnet_vna_flows{")))


def metric(sample: dict[str, float], name: str) -> float:
    return next(v for k, v in sample.items() if k == name or k.startswith(name + "{"))


# ---------------------------------------------------------------------------- datapath

PASSES_RE = re.compile(r"avg\. datapath passes per packet: ([\d.]+)")


def clear_datapath_stats(hvs: Iterable[Hypervisor]) -> None:
    for hv in hvs:
        hv.ovs.appctl("dpif-netdev/pmd-stats-clear")


def datapath_passes(hvs: dict[str, Hypervisor]) -> dict[str, float]:
    """Each switch's datapath passes per packet since the last clear: 1 + one
    recirculation per conntrack lookup or tunnel pop (`dpif-netdev/pmd-stats-show`)."""
    out = {}
    for name, hv in hvs.items():
        m = PASSES_RE.search(hv.ovs.appctl("dpif-netdev/pmd-stats-show"))
        out[name] = float(m.group(1)) if m else float("nan")
    return out


# ---------------------------------------------------------------------------- statistics

def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


# ---------------------------------------------------------------------------- report

def save_results(stem: str, res: dict[str, Any]) -> Path:
    """`res` as bench/results/<stem>.json (the directory is gitignored)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{stem}.json"
    path.write_text(json.dumps(res, indent=2, default=str))
    return path


def table(title: str, header: list[str], rows: list[list[Any]]) -> str:
    def cell(x: Any) -> str:
        if isinstance(x, float):
            return f"{x:,.3f}" if abs(x) < 10 else f"{x:,.0f}"
        return str(x)
    body = [[cell(c) for c in r] for r in rows]
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(lines) + "\n"


def vm_rss_kib(pid: int) -> dict[str, int]:
    """{"VmHWM": peak, "VmRSS": current} of a process, KiB, from /proc/<pid>/status."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmHWM:", "VmRSS:")):
            key, value = line.split(":", 1)
            out[key] = int(value.split()[0])
    return out
