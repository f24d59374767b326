"""Where a vna spends its time: py-spy over the full sync and over convergence.

    .venv/bin/python -m bench.profile [--n 10000] [--calls 100]

Needs py-spy (`.venv/bin/pip install py-spy`). Builds the same lab as bench/run, records
the h1 vna while it syncs an empty bridge and then while it applies `calls` interface
creations, and prints the functions with the most samples (inclusive and own).
Collapsed stacks go to bench/results/profile-<phase>-<timestamp>.txt (flamegraph input).
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench import vnabench as vb
from bench.common import RESULTS_DIR, log
from lab import Lab

PY_SPY = Path(sys.executable).parent / "py-spy"


def record(pid: int, out: Path, duration: int) -> subprocess.Popen:
    return subprocess.Popen([str(PY_SPY), "record", "--pid", str(pid), "--format", "raw",
                             "--rate", "200", "--duration", str(duration), "--nonblocking",
                             "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=open(f"{out}.log", "w"))


def stop(spy: subprocess.Popen) -> None:
    """py-spy writes its output on SIGINT (like Ctrl-C), not on SIGTERM."""
    spy.send_signal(signal.SIGINT)
    spy.wait(60)


def summarise(path: Path, top: int = 25, keep: str = "") -> str:
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if keep and keep not in stack:
            continue
        n = int(count)
        total += n
        frames = [f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0].split("/")[-1] + ")"
                  for f in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] += n
        own[frames[-1]] += n
    lines = [f"{path.name}: {total} samples" + (f" in stacks through {keep!r}" if keep else "")]
    lines.append("  inclusive:")
    lines += [f"    {100 * n / total:5.1f}%  {f}" for f, n in inclusive.most_common(top)]
    lines.append("  own:")
    lines += [f"    {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(15)]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--calls", type=int, default=100)
    args = parser.parse_args()
    os.environ["PATH"] += os.pathsep + "/usr/sbin" + os.pathsep + "/sbin"
    stamp = time.strftime("%Y%m%dT%H%M%S")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    with Lab() as lab:
        log(f"building N={args.n}")
        bed = vb.build(lab, args.n)
        snapshot = RESULTS_DIR / f"snapshot-{args.n}.json.gz"
        with gzip.open(snapshot, "wt") as f:  # input for bench.micro
            json.dump(bed.rpc.call("snapshot"), f)
        sync_out = RESULTS_DIR / f"profile-sync-{args.n}-{stamp}.txt"
        handle, offset = bed.start_vna("h1")
        spy = record(handle.pid, sync_out, 60)
        sync = vb.wait_full_sync(handle, offset, 900)
        stop(spy)
        log(sync["line"].split("msg=")[-1])
        h2, off2 = bed.start_vna("h2")
        vb.wait_full_sync(h2, off2, 900)
        time.sleep(2)
        conv_out = RESULTS_DIR / f"profile-conv-{args.n}-{stamp}.txt"
        spy = record(handle.pid, conv_out, 600)
        time.sleep(1)
        conv = vb.bench_convergence(bed, args.calls)
        stop(spy)
        log(f"convergence p50 {conv['p50_ms']:.1f} ms p99 {conv['p99_ms']:.1f} ms")
    print(summarise(sync_out, keep="_full_sync"))
    print(summarise(conv_out, keep="_on_changes"))
    print(f"stacks: {sync_out} {conv_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
