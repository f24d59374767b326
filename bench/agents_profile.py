"""Where vnmgr's time goes with many agents (bench.agents, §9): vnmgr in this process
(vnmgr.service.Vnmgr on SQLite in /dev/shm, inproc sockets, no subscriber), the model of
bench.agents built through `Vnmgr.handle`, D nodes registered by their `snapshot`, then
the fan-out's writes (vif create + report, a datapath update every fourth) under
cProfile, against the same writes before any node registered.

    .venv/bin/python -m bench.agents_profile [--agents 1000 --interfaces 10000 --writes 100]

Prints ms per write with 0 and D nodes and the top functions; the collapsed profile goes
to bench/results/profile-agents-<D>.txt.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import tempfile
import time
from pathlib import Path
from typing import Any

import zmq

from bench.agents import Sizes, Writer, build, network_cidr
from bench.common import RESULTS_DIR, log
from vnet import db
from vnet.errors import ApiError
from vnet.messaging import encode
from vnmgr.service import Vnmgr


class InProcess:
    """RpcClient's `call` straight into `Vnmgr.handle` (no sockets, no JSON)."""

    def __init__(self, vnmgr: Vnmgr) -> None:
        self.vnmgr = vnmgr

    def call(self, op: str, resource: str | None = None, uuid: str | None = None,
             params: dict[str, Any] | None = None, timeout_ms: int | None = None) -> Any:
        reply = self.vnmgr.handle({"op": op, "resource": resource, "uuid": uuid,
                                   "params": params or {}})
        if not reply.get("ok"):
            raise ApiError.from_dict(int(reply.get("status", 500)), reply)
        return reply["result"]


def writes(write: Writer, sizes: Sizes, first: int, count: int) -> float:
    """bench.agents.fan_out's writes w = first .. first+count-1; seconds."""
    world = write.world  # type: ignore[attr-defined]
    started = time.monotonic()
    n_networks = len(world.networks)
    for w in range(first, first + count):
        nw, a, b = world.networks[(w * 7919) % n_networks]
        owner = (a, b)[w % 2]
        uuid = f"if-fan{w:05d}"
        write("create", "interfaces", uuid=uuid, mode="vif", owner_datapath_uuid=owner,
              mac_address=f"16:00:00:{w >> 16 & 255:02x}:{w >> 8 & 255:02x}:{w & 255:02x}",
              network_uuid=nw, ipv4_address=str(network_cidr(int(nw[3:])).network_address
                                                + 100 + w // n_networks))
        world.claims[owner].append(uuid)
        write.report(owner, world.claims[owner])
        if w % 4 == 3:
            write("update", "datapaths", world.datapaths[w % len(world.datapaths)],
                  display_name=f"fan{w}")
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--interfaces", type=int, default=10000)
    parser.add_argument("--writes", type=int, default=100)
    args = parser.parse_args()
    sizes = Sizes.of(False, args.agents, args.interfaces, args.writes)
    with tempfile.TemporaryDirectory(dir="/dev/shm") as tmp:
        url = f"sqlite:///{tmp}/vnet.sqlite3"
        db.upgrade(url)
        context = zmq.Context()
        vnmgr = Vnmgr(db.make_sessionmaker(db.make_engine(url)), f"ipc://{tmp}/rpc",
                      f"ipc://{tmp}/pub", context=context)
        write = Writer(InProcess(vnmgr))  # type: ignore[arg-type]
        started = time.monotonic()
        world = build(write, sizes)
        write.world = world  # type: ignore[attr-defined]
        log(f"built {world.counts} ({write.calls} writes) in {time.monotonic() - started:.1f}s")
        n = sizes.writes
        before = writes(write, sizes, 0, n)
        calls = n * 2 + n // 4
        log(f"0 nodes: {before / calls * 1000:.2f} ms per write")
        started = time.monotonic()
        size = 0
        for dp in world.datapaths:
            snap = write.rpc.call("snapshot", params={"node_id": world.nodes[dp],
                                                      "watch": world.watch(dp).to_params()})
            size += len(encode(snap))
        took, count = time.monotonic() - started, len(world.datapaths)
        log(f"{count} snapshots: {took:.1f}s, {took / count * 1000:.1f} ms each with their "
            f"encoding ({size / count / 1e6:.2f} MB each)")
        profile = cProfile.Profile()
        profile.enable()
        after = writes(write, sizes, n, n)
        profile.disable()
        log(f"{len(world.datapaths)} nodes: {after / calls * 1000:.2f} ms per write "
            f"(slices recomputed: {vnmgr.subscriptions.recomputed if vnmgr.subscriptions else 0})")
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(30)
        pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(15)
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        path = Path(RESULTS_DIR / f"profile-agents-{len(world.datapaths)}.txt")
        path.write_text(out.getvalue())
        print(out.getvalue())
        log(f"profile: {path}")
        vnmgr.close()
        context.term()


if __name__ == "__main__":
    main()
