"""Slices and agents by the thousand (issue 13, targets 4 and 6): one vnmgr, D simulated
agents, each holding its datapath's slice of the model over the per-node protocol.

No Open vSwitch: vnmgr runs alone on SQLite (lab.services), the model is written through
its RPC like bench.testbed's, and the agents are `SimAgent`s, lightweight copies of
vna.vnmgr_link's protocol (a SUB socket on the heartbeat topic and the node's topic, an
asynchronous `snapshot` request, the `n` chain, resync on a gap, on a heartbeat announcing
an unseen message, on a new epoch) holding their slice as a dict model. All of them run
in one process, in one poll loop (`Swarm`), on one zmq.Context.

Model (sizes tunable): D model-only datapaths `dp-sim<i>` (node_id `sim<i>`, distinct
dpid, a host interface on the physical underlay); I/10 virtual networks, network k joined
to datapaths k and k+1 (mod D), its 10 vifs alternately owned by them and bound there by
a port report (`report` on `active_interfaces`, as a vna would); R routers, router r
joining networks r and r + I/20 (far apart).

Measured (docs/performance.md, §9):
  a. cold start: every agent subscribes and asks for its snapshot at once; the time
     until the last one holds it (target < 60 s);
  b. fan-out: W writes, each a vif created on a network and bound on one of its two
     datapaths (create + report), every fourth also a datapath row update (which every
     agent receives); the time from the create's call until each agent that needs it
     has applied the binding, p50/p99 over (write, agent) pairs (target p99 < 250 ms),
     and how many agents got rows of a vif they must not hold (0 expected);
  c. vnmgr CPU (utime + stime of its process) per write and per event during (b);
  d. rows and bytes of each agent's snapshot against the whole (unsliced) model;
  e. flows (target 4: a datapath holds <= 5 % of today's flows): the vna's desired flows
     from the whole model and from the datapath's slice, for a sample of datapaths,
     computed in process by the vna's pure core (vna.desired, vna.view), and the time
     vnet.slice takes to cut one slice;
  f. correctness: a sample of agents' models equal a fresh snapshot of their node, and
     no agent resynced after the cold start;
  g. recovery: one agent loses a message (resync by the heartbeat's `n`); vnmgr restarts
     (resync of every agent by the new epoch).
"""

from __future__ import annotations

import gc
import ipaddress
import json
import os
import resource
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import zmq

from bench.common import log, percentile, table, vm_rss_kib
from lab import Lab
from lab.services import Services
from vna.desired import DesiredState
from vna.modelstore import ModelStore
from vna.view import LocalBinding, View
from vnet.keys import AGENT, ClientKeys
from vnet.messaging import HEARTBEAT_TOPIC, RpcClient, decode, encode, node_topic
from vnet.slice import ModelIndex, Watch, interest, slice_keys, slice_model

Row = dict[str, Any]
Model = dict[str, dict[str, Row]]

UNDERLAY = ipaddress.IPv4Network("172.16.0.0/16")
UNDERLAY_NET = "nw-underlay"
TUNNEL_OFPORT = 100
SNAPSHOT_TIMEOUT = 120.0  # s before an unanswered snapshot request is sent again


@dataclass
class Sizes:
    agents: int
    interfaces: int
    routers: int
    writes: int
    verify_sample: int  # agents compared with a fresh snapshot at the end
    flow_sample: int  # datapaths whose flows are computed from the whole model

    @classmethod
    def of(cls, quick: bool, agents: int | None = None, interfaces: int | None = None,
           writes: int | None = None) -> Sizes:
        if quick:
            base = cls(100, 1000, 5, 50, 100, 10)
        else:
            base = cls(1000, 10000, 10, 200, 50, 5)
        if agents:
            base.agents = agents
        if interfaces:
            base.interfaces = interfaces
        if writes:
            base.writes = writes
        base.verify_sample = min(base.verify_sample, base.agents)
        return base


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (/proc/<pid>/stat), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def network_cidr(k: int) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(f"10.{k // 256}.{k % 256}.0/24")


def rows_of(model: Model) -> int:
    return sum(len(rows) for rows in model.values())


def normalized(model: Model) -> Model:
    return {r: rows for r, rows in model.items() if rows}


# ---------------------------------------------------------------------------- the model

@dataclass
class World:
    """What the builder made: per datapath its node, dpid and bound vifs; per network its
    two datapaths."""

    datapaths: list[str] = field(default_factory=list)
    nodes: dict[str, str] = field(default_factory=dict)  # datapath -> node_id
    dpids: dict[str, str] = field(default_factory=dict)  # datapath -> dpid
    claims: dict[str, list[str]] = field(default_factory=dict)  # datapath -> bound vifs
    networks: list[tuple[str, str, str]] = field(default_factory=list)  # (nw, dp a, dp b)
    counts: dict[str, int] = field(default_factory=dict)
    rpcs: int = 0
    seconds: float = 0.0

    def watch(self, dp: str) -> Watch:
        """What the datapath's bridge shows: its dpid and its vifs' iface-ids."""
        return Watch(self.dpids[dp], frozenset(self.claims[dp]), frozenset())


class Writer:
    """vnmgr writes, counted."""

    def __init__(self, rpc: RpcClient) -> None:
        self.rpc = rpc
        self.calls = 0

    def __call__(self, op: str, resource: str, target: str | None = None,
                 **params: Any) -> Any:
        self.calls += 1
        return self.rpc.call(op, resource, target, params, timeout_ms=120000)

    def report(self, dp: str, uuids: list[str]) -> None:
        """The port report a vna would send for `dp` (bench.testbed.report_ports)."""
        ports = [{"interface_uuid": u, "port_name": f"p{n}", "port_number": n + 1}
                 for n, u in enumerate(uuids)]
        self("report", "active_interfaces", datapath_uuid=dp, ports=ports)


def build(write: Writer, sizes: Sizes) -> World:
    world = World()
    started = time.monotonic()
    write("create", "networks", uuid=UNDERLAY_NET, ipv4_network=str(UNDERLAY.network_address),
          ipv4_prefix=UNDERLAY.prefixlen, network_mode="physical")
    for i in range(sizes.agents):
        dp, dpid = f"dp-sim{i}", f"0x{0x0000CA0000000000 + i:016x}"
        write("create", "datapaths", uuid=dp, dpid=dpid, node_id=f"sim{i}")
        write("create", "interfaces", uuid=f"if-sim{i}ul", mode="host",
              owner_datapath_uuid=dp, port_name="ul0",
              mac_address=f"02:fe:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}",
              network_uuid=UNDERLAY_NET, ipv4_address=str(UNDERLAY.network_address + 1 + i))
        world.datapaths.append(dp)
        world.nodes[dp], world.dpids[dp], world.claims[dp] = f"sim{i}", dpid, []
    n_networks = max(1, sizes.interfaces // 10)
    interfaces = 0
    for k in range(n_networks):
        nw, cidr = f"nw-{k:05d}", network_cidr(k)
        pair = (world.datapaths[k % sizes.agents], world.datapaths[(k + 1) % sizes.agents])
        world.networks.append((nw, *pair))
        write("create", "networks", uuid=nw, ipv4_network=str(cidr.network_address),
              ipv4_prefix=24, network_mode="virtual")
        for side, dp in enumerate(dict.fromkeys(pair)):
            write("create", "datapath_networks", datapath_uuid=dp, network_uuid=nw,
                  broadcast_mac_address=f"02:fd:{side:02x}:{k >> 16 & 255:02x}:"
                                        f"{k >> 8 & 255:02x}:{k & 255:02x}",
                  interface_uuid=f"if-{dp.removeprefix('dp-')}ul")
        for j in range(10):
            if interfaces >= sizes.interfaces:
                break
            uuid, owner = f"if-{k:05d}x{j}", pair[j % 2]
            write("create", "interfaces", uuid=uuid, mode="vif", owner_datapath_uuid=owner,
                  mac_address=f"12:{k >> 16 & 255:02x}:{k >> 8 & 255:02x}:{k & 255:02x}:00:"
                              f"{j:02x}",
                  network_uuid=nw, ipv4_address=str(cidr.network_address + 10 + j))
            world.claims[owner].append(uuid)
            interfaces += 1
    for dp, uuids in world.claims.items():
        if uuids:
            write.report(dp, uuids)
    routers = 0
    for r in range(min(sizes.routers, n_networks // 2)):
        link = f"rl-{r}"
        write("create", "route_links", uuid=link, mac_address=f"02:00:10:00:{r >> 8 & 255:02x}:"
                                                              f"{r & 255:02x}")
        for pos, k in enumerate((r, r + n_networks // 2), start=1):
            cidr, nw = network_cidr(k), f"nw-{k:05d}"
            port = f"if-rl{r}p{pos}"
            write("create", "interfaces", uuid=port, mode="simulated", network_uuid=nw,
                  mac_address=f"02:00:00:{r >> 8 & 255:02x}:{r & 255:02x}:{pos:02x}",
                  ipv4_address=str(cidr.network_address + 1), enable_routing="true")
            write("create", "routes", uuid=f"r-{r}x{pos}", interface_uuid=port,
                  network_uuid=nw, route_link_uuid=link,
                  ipv4_network=str(cidr.network_address), ipv4_prefix=24)
        routers += 1
    world.counts = {"datapaths": sizes.agents, "networks": n_networks,
                    "interfaces": interfaces, "routers": routers}
    world.rpcs = write.calls
    world.seconds = time.monotonic() - started
    return world


# ---------------------------------------------------------------------------- the agents

class RowPool:
    """Equal rows held by many agents are one object (a datapath row in 1,000 slices):
    memory of the swarm, not of the protocol."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], Row] = {}

    def intern(self, resource: str, uuid: str, row: Row) -> Row:
        key = (resource, uuid)
        held = self.rows.get(key)
        if held is not None and held == row:
            return held
        self.rows[key] = row
        return row


Tracker = Callable[["SimAgent", list[dict[str, Any]], float], None]


class SimAgent:
    """One node's link to vnmgr as vna.vnmgr_link runs it, without a switch: its slice
    as {resource: {uuid: row}}, kept by snapshots and the node topic's `n` chain."""

    def __init__(self, swarm: Swarm, node_id: str, watch: Watch) -> None:
        self.swarm = swarm
        self.node_id = node_id
        self.watch = watch
        self.sub = swarm.socket(zmq.SUB)
        self.sub.setsockopt(zmq.RCVHWM, 100000)
        self.sub.setsockopt(zmq.SUBSCRIBE, HEARTBEAT_TOPIC)
        self.sub.setsockopt(zmq.SUBSCRIBE, node_topic(node_id))
        self.sub.connect(swarm.pub_endpoint)
        self.model: Model = {}
        self.seq: int | None = None  # None: a snapshot is needed
        self.n = 0
        self.epoch = ""
        self.request: zmq.Socket | None = None  # the pending snapshot request
        self.requested_at = 0.0
        self.snapshots = 0
        self.snapshot_at: float | None = None  # when the first snapshot was loaded
        self.snapshot_bytes = 0
        self.snapshot_rows = 0
        self.messages = 0
        self.gaps = 0
        self.drop = 0  # messages to lose on purpose (the loss test)

    # -- snapshot (asynchronous: a DEALER per request, like RpcClient's fresh REQ)
    def ask_snapshot(self) -> None:
        if self.request is not None:
            self.swarm.forget(self.request)
            self.request.close()
        sock = self.swarm.socket(zmq.DEALER)
        sock.connect(self.swarm.rpc_endpoint)
        body = encode({"op": "snapshot", "resource": None, "uuid": None,
                       "params": {"node_id": self.node_id, "watch": self.watch.to_params()},
                       "expires_at": time.time() + SNAPSHOT_TIMEOUT})
        sock.send_multipart([b"", body])
        self.request, self.requested_at = sock, time.monotonic()
        self.swarm.expect_reply(sock, self)

    def on_reply(self, frames: list[bytes]) -> None:
        assert self.request is not None
        self.swarm.forget(self.request)
        self.request.close()
        self.request = None
        reply = decode(frames[-1])
        if not reply.get("ok"):
            log(f"{self.node_id}: snapshot refused: {reply}; asking again")
            self.ask_snapshot()
            return
        snap = reply["result"]
        intern = self.swarm.pool.intern
        self.model = {r: {u: intern(r, u, row) for u, row in rows.items()}
                      for r, rows in snap["model"].items()}
        self.seq, self.n, self.epoch = int(snap["seq"]), int(snap["n"]), str(snap["epoch"])
        self.snapshots += 1
        self.snapshot_bytes = len(frames[-1])
        self.snapshot_rows = rows_of(self.model)
        if self.snapshot_at is None:
            self.snapshot_at = time.monotonic()

    def resync(self) -> None:
        self.seq = None
        self.ask_snapshot()

    # -- the topic
    def on_frames(self, frames: list[bytes], now: float) -> None:
        if frames[0] == HEARTBEAT_TOPIC:
            beat = decode(frames[1])
            if self.seq is not None and beat.get("epoch") != self.epoch:
                self.resync()
            return
        if len(frames) != 3 or self.seq is None:
            return  # before the snapshot: it holds whatever this was
        header = decode(frames[1])
        n, seq = int(header["n"]), int(header["seq"])
        if header.get("heartbeat"):
            if n > self.n:
                self.gaps += 1
                self.resync()
            elif n == self.n and seq > self.seq:
                self.seq = seq
            return
        if n <= self.n:
            return
        if self.drop:
            self.drop -= 1
            return
        if n != self.n + 1:
            self.gaps += 1
            self.resync()
            return
        self.n, self.seq = n, max(self.seq, seq)
        changes = decode(frames[2])["changes"]
        self.messages += 1
        intern = self.swarm.pool.intern
        for change in changes:
            resource, uuid = change["resource"], change["uuid"]
            rows = self.model.setdefault(resource, {})
            if change["op"] == "upsert":
                rows[uuid] = intern(resource, uuid, change["data"])
            else:
                rows.pop(uuid, None)
        if self.swarm.tracker is not None:
            self.swarm.tracker(self, changes, now)


class Swarm:
    """Every SimAgent's sockets in one poll loop, on one context."""

    def __init__(self, rpc_endpoint: str, pub_endpoint: str, io_threads: int = 2,
                 keys: ClientKeys | None = None) -> None:
        self.rpc_endpoint, self.pub_endpoint = rpc_endpoint, pub_endpoint
        self.keys = keys  # the agent key when vnmgr runs with keys (run(keys=True))
        self.context = zmq.Context(io_threads=io_threads)
        self.context.set(zmq.MAX_SOCKETS, 65536)
        self.poller = zmq.Poller()
        self.agents: dict[str, SimAgent] = {}
        self.by_sub: dict[zmq.Socket, SimAgent] = {}
        self.by_request: dict[zmq.Socket, SimAgent] = {}
        self.pool = RowPool()
        self.tracker: Tracker | None = None
        self.running = True
        self.loop_seconds = 0.0  # time spent handling messages (not waiting)
        # Work for the loop thread (zmq sockets belong to it once it runs).
        self.calls: deque[Callable[[], None]] = deque()

    def socket(self, kind: int) -> zmq.Socket:
        """A socket of the swarm's context, with the agent key when keys are on."""
        sock = self.context.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        if self.keys is not None:
            self.keys.apply(sock)
        return sock

    def add(self, node_id: str, watch: Watch) -> SimAgent:
        agent = self.agents[node_id] = SimAgent(self, node_id, watch)
        self.by_sub[agent.sub] = agent
        self.poller.register(agent.sub, zmq.POLLIN)
        return agent

    def expect_reply(self, sock: zmq.Socket, agent: SimAgent) -> None:
        self.by_request[sock] = agent
        self.poller.register(sock, zmq.POLLIN)

    def forget(self, sock: zmq.Socket) -> None:
        if self.by_request.pop(sock, None) is not None:
            self.poller.unregister(sock)

    def pending(self) -> int:
        return len(self.by_request)

    def run(self) -> None:
        """The loop (a thread of its own); stops when `running` is cleared."""
        next_check = 0.0
        while self.running:
            while self.calls:
                self.calls.popleft()()
            ready = self.poller.poll(20)
            started = now = time.monotonic()
            for sock, _ in ready:
                agent = self.by_sub.get(sock)
                if agent is not None:
                    for _ in range(100):  # drain, but let the others have a turn
                        try:
                            frames = sock.recv_multipart(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        agent.on_frames(frames, now)
                    continue
                agent = self.by_request.get(sock)
                if agent is not None and agent.request is sock:
                    agent.on_reply(sock.recv_multipart())
            if ready:
                self.loop_seconds += time.monotonic() - started
            if started >= next_check:  # requests vnmgr dropped or never answered
                next_check = started + 1.0
                for agent in self.agents.values():
                    if (agent.request is not None
                            and started - agent.requested_at > SNAPSHOT_TIMEOUT + 5):
                        agent.ask_snapshot()

    def close(self) -> None:
        for agent in self.agents.values():
            if agent.request is not None:
                agent.request.close()
            agent.sub.close()
        self.context.term()


# ---------------------------------------------------------------------------- a. cold start

def cold_start(swarm: Swarm, world: World, started: float, vnmgr_pid: int,
               timeout: float = 600.0) -> dict[str, Any]:
    """Every agent asks for its snapshot at once (sockets made since `started`); waits
    until each holds one."""
    cpu0 = cpu_seconds(vnmgr_pid)
    agents = list(swarm.agents.values())

    def ask_all() -> None:
        for agent in agents:
            agent.ask_snapshot()

    swarm.calls.append(ask_all)
    deadline = started + timeout
    while any(a.snapshot_at is None for a in agents):
        if time.monotonic() > deadline:
            missing = sum(a.snapshot_at is None for a in agents)
            raise TimeoutError(f"cold start: {missing} agents without a snapshot after "
                               f"{timeout:.0f}s")
        time.sleep(0.01)
    done = [a.snapshot_at - started for a in agents if a.snapshot_at is not None]
    cpu = cpu_seconds(vnmgr_pid) - cpu0
    return {"agents": len(agents), "seconds": max(done), "p50_s": percentile(done, 50),
            "first_s": min(done), "vnmgr_cpu_s": cpu,
            "vnmgr_cpu_ms_per_snapshot": cpu / len(agents) * 1000,
            "swarm_busy_s": swarm.loop_seconds}


# ---------------------------------------------------------------------------- b, c. fan-out

class FanOut:
    """Records, per (tracked row, agent), when the agent applied it (the swarm's tracker,
    called in its loop thread)."""

    def __init__(self) -> None:
        self.vifs: set[str] = set()
        self.marks: set[str] = set()  # datapath display names written
        self.bound: dict[tuple[str, str], float] = {}  # (vif, node) -> binding applied
        self.seen: set[tuple[str, str]] = set()  # (vif, node): any row of the vif
        self.marked: dict[tuple[str, str], float] = {}  # (mark, node) -> applied

    def __call__(self, agent: SimAgent, changes: list[dict[str, Any]], now: float) -> None:
        node = agent.node_id
        for change in changes:
            resource, data = change["resource"], change.get("data") or {}
            if resource == "datapaths":
                if data.get("display_name") in self.marks:
                    self.marked.setdefault((data["display_name"], node), now)
                continue
            vif = change["uuid"] if resource == "interfaces" else data.get("interface_uuid")
            if vif not in self.vifs:
                continue
            self.seen.add((vif, node))
            if (resource == "active_interfaces" and change["op"] == "upsert"
                    and data.get("state") == "active"):
                self.bound.setdefault((vif, node), now)


def expected_nodes(full: Model, world: World) -> dict[str, set[str]]:
    """network -> the nodes whose slice holds it (so must get its new vifs), by vnet.slice
    on the whole model: what vnmgr should do, computed apart from it."""
    index = ModelIndex(full)
    out: dict[str, set[str]] = {nw: set() for nw, _a, _b in world.networks}
    for dp in world.datapaths:
        node, watch = world.nodes[dp], world.watch(dp)
        for nw in interest(index, index.datapaths_of(node, watch), watch).networks:
            out.setdefault(nw, set()).add(node)
    return out


def wait_for(done: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


def fan_out(swarm: Swarm, world: World, write: Writer, expected: dict[str, set[str]],
            writes: int, vnmgr_pid: int) -> dict[str, Any]:
    """`writes` vifs created and bound (create + report), every fourth write also a
    datapath row update; one at a time, the next once every agent has it (or 10 s)."""
    rec = FanOut()
    swarm.tracker = rec
    nodes = set(swarm.agents)
    resyncs0 = sum(a.snapshots for a in swarm.agents.values())
    time.sleep(2.0)  # idle: what heartbeats alone cost vnmgr
    idle0 = cpu_seconds(vnmgr_pid)
    time.sleep(3.0)
    idle_cpu_per_s = (cpu_seconds(vnmgr_pid) - idle0) / 3.0
    seq0 = write.rpc.call("health")["seq"]
    cpu0, wall0 = cpu_seconds(vnmgr_pid), time.monotonic()
    vif_lat: list[float] = []
    dp_lat: list[float] = []
    rpc_ms: list[float] = []
    missing = 0
    placed: dict[str, str] = {}  # vif -> its network
    n_networks = len(world.networks)
    for w in range(writes):
        nw, a, b = world.networks[(w * 7919) % n_networks]
        k = int(nw.removeprefix("nw-"))
        owner = (a, b)[w % 2]
        uuid = f"if-fan{w:05d}"
        ip = str(network_cidr(k).network_address + 100 + w // n_networks)
        rec.vifs.add(uuid)
        placed[uuid] = nw
        want = expected[nw]
        t0 = time.monotonic()
        write("create", "interfaces", uuid=uuid, mode="vif", owner_datapath_uuid=owner,
              mac_address=f"16:00:00:{w >> 16 & 255:02x}:{w >> 8 & 255:02x}:{w & 255:02x}",
              network_uuid=nw, ipv4_address=ip)
        world.claims[owner].append(uuid)
        write.report(owner, world.claims[owner])
        rpc_ms.append((time.monotonic() - t0) * 1000)
        if not wait_for(lambda u=uuid, want=want: all((u, n) in rec.bound for n in want),
                        10.0):
            missing += sum((uuid, n) not in rec.bound for n in want)
        vif_lat += [(rec.bound[(uuid, n)] - t0) * 1000 for n in want if (uuid, n) in rec.bound]
        if w % 4 == 3:
            dp, mark = world.datapaths[w % len(world.datapaths)], f"fan{w}"
            rec.marks.add(mark)
            t1 = time.monotonic()
            write("update", "datapaths", dp, display_name=mark)
            if not wait_for(lambda m=mark: all((m, n) in rec.marked for n in nodes), 10.0):
                missing += sum((mark, n) not in rec.marked for n in nodes)
            dp_lat += [(rec.marked[(mark, n)] - t1) * 1000 for n in nodes
                       if (mark, n) in rec.marked]
        time.sleep(0.01)
    wall = time.monotonic() - wall0
    cpu = cpu_seconds(vnmgr_pid) - cpu0
    seq1 = write.rpc.call("health")["seq"]
    swarm.tracker = None
    should = {(u, n) for u, nw in placed.items() for n in expected[nw]}
    misdelivered = {pair for pair in rec.seen if pair not in should}
    updates = len(rec.marks)
    events = seq1 - seq0
    cpu_writes = cpu - idle_cpu_per_s * wall
    both = vif_lat + dp_lat
    return {
        "writes": writes, "datapath_updates": updates, "events": events,
        "vif_pairs": len(vif_lat), "datapath_pairs": len(dp_lat),
        "recipients_per_vif_mean": len(vif_lat) / max(1, writes),
        "vif_p50_ms": percentile(vif_lat, 50), "vif_p99_ms": percentile(vif_lat, 99),
        "vif_max_ms": max(vif_lat),
        "datapath_p50_ms": percentile(dp_lat, 50) if dp_lat else None,
        "datapath_p99_ms": percentile(dp_lat, 99) if dp_lat else None,
        "datapath_max_ms": max(dp_lat) if dp_lat else None,
        "all_p50_ms": percentile(both, 50), "all_p99_ms": percentile(both, 99),
        "rpc_p50_ms": percentile(rpc_ms, 50), "rpc_p99_ms": percentile(rpc_ms, 99),
        "missing_pairs": missing,
        "misdelivered_pairs": len(misdelivered),
        "misdelivered_agents": len({n for _u, n in misdelivered}),
        "misdelivered_examples": sorted(misdelivered)[:5],
        "wall_s": wall, "vnmgr_cpu_s": cpu, "vnmgr_idle_cpu_per_s": idle_cpu_per_s,
        "vnmgr_cpu_ms_per_write": cpu / (writes + updates) * 1000,
        "vnmgr_cpu_ms_per_event": cpu / max(1, events) * 1000,
        "vnmgr_cpu_ms_per_event_minus_idle": cpu_writes / max(1, events) * 1000,
        "resyncs": sum(a.snapshots for a in swarm.agents.values()) - resyncs0,
    }



# ---------------------------------------------------------------------------- d. sizes

def slice_share(swarm: Swarm, full: Model) -> dict[str, Any]:
    """Each agent's first snapshot (rows, bytes of the reply) against the whole model."""
    full_rows = rows_of(full)
    full_bytes = len(encode({"ok": True, "result": {"seq": 0, "model": full}}))
    rows = [a.snapshot_rows for a in swarm.agents.values()]
    sizes = [a.snapshot_bytes for a in swarm.agents.values()]
    by_resource = {r: len(v) for r, v in full.items() if v}
    return {
        "full_rows": full_rows, "full_bytes": full_bytes, "full_by_resource": by_resource,
        "slice_rows_mean": statistics.mean(rows), "slice_rows_max": max(rows),
        "slice_bytes_mean": statistics.mean(sizes), "slice_bytes_max": max(sizes),
        "rows_share_pct": statistics.mean(rows) / full_rows * 100,
        "bytes_share_pct": statistics.mean(sizes) / full_bytes * 100,
        "rows_share_max_pct": max(rows) / full_rows * 100,
    }


# ---------------------------------------------------------------------------- f. correctness

def verify(swarm: Swarm, world: World, rpc: RpcClient, sample: int) -> dict[str, Any]:
    """A sample of agents (evenly spread) against a fresh snapshot of their node, once
    quiet: equal models, and every agent at the latest sequence."""
    nodes = list(swarm.agents)
    step = max(1, len(nodes) // max(1, sample))
    chosen = nodes[::step][:sample]
    dps = {node: dp for dp, node in world.nodes.items()}
    seq = rpc.call("health")["seq"]
    wait_for(lambda: all((a.seq or 0) >= seq for a in swarm.agents.values()), 10.0)
    differ: list[dict[str, Any]] = []
    for node in chosen:
        agent = swarm.agents[node]
        fresh = rpc.call("snapshot", params={"node_id": node,
                                            "watch": world.watch(dps[node]).to_params()},
                         timeout_ms=120000)
        mine, theirs = normalized(agent.model), normalized(fresh["model"])
        if mine != theirs or agent.n != fresh["n"]:
            keys = {(r, u) for r, rows in mine.items() for u in rows}
            fresh_keys = {(r, u) for r, rows in theirs.items() for u in rows}
            changed = sorted((r, u) for r, u in keys & fresh_keys
                             if mine[r][u] != theirs[r][u])
            differ.append({"node": node, "n": agent.n, "fresh_n": fresh["n"],
                           "extra": sorted(keys - fresh_keys)[:5],
                           "missing": sorted(fresh_keys - keys)[:5], "changed": changed[:5]})
    behind = sum((a.seq or 0) < seq for a in swarm.agents.values())
    return {"compared": len(chosen), "differ": len(differ), "differ_examples": differ[:3],
            "agents_behind": behind, "seq": seq}


# ---------------------------------------------------------------------------- g. recovery

def compare(agent: SimAgent, world: World, rpc: RpcClient) -> bool:
    """The agent's model equals a fresh snapshot of its node."""
    dp = next(dp for dp, node in world.nodes.items() if node == agent.node_id)
    fresh = rpc.call("snapshot", params={"node_id": agent.node_id,
                                        "watch": world.watch(dp).to_params()},
                     timeout_ms=120000)
    return normalized(agent.model) == normalized(fresh["model"])


def lost_message(swarm: Swarm, world: World, write: Writer) -> dict[str, Any]:
    """One agent loses the next message on its topic (a datapath row update, which every
    agent gets): the next heartbeat announces an `n` it has not applied; it resyncs."""
    agent = swarm.agents[world.nodes[world.datapaths[0]]]
    before = agent.snapshots
    agent.drop = 1
    started = time.monotonic()
    write("update", "datapaths", world.datapaths[-1], display_name="lost")
    recovered = wait_for(lambda: agent.snapshots > before and agent.request is None, 10.0)
    seconds = time.monotonic() - started
    return {"recovered": recovered, "seconds": seconds, "gaps": agent.gaps,
            "equal_after": compare(agent, world, write.rpc)}


def restart(swarm: Swarm, world: World, services: Services, vnmgr: Any, write: Writer
            ) -> dict[str, Any]:
    """vnmgr restarts (new epoch, no subscriptions): a write loads its model, the epoch
    heartbeat makes every agent resync; the time until all hold the write."""
    agents = list(swarm.agents.values())
    before = {a.node_id: a.snapshots for a in agents}
    old_epoch = agents[0].epoch
    vnmgr.stop()
    started = time.monotonic()
    handle = services.start_vnmgr()
    write("update", "datapaths", world.datapaths[0], display_name="restarted")
    seq = write.rpc.call("health")["seq"]
    done = wait_for(lambda: all(a.epoch != old_epoch and (a.seq or 0) >= seq
                                and a.request is None for a in agents), 600.0)
    seconds = time.monotonic() - started
    step = max(1, len(agents) // 10)
    equal = sum(compare(a, world, write.rpc) for a in agents[::step][:10])
    return {"all_resynced": done, "seconds": seconds,
            "resyncs": sum(a.snapshots - before[a.node_id] for a in agents),
            "compared": len(agents[::step][:10]), "equal": equal, "pid": handle.pid}


# ---------------------------------------------------------------------------- e. flows

def desired_flows(model: Model, binding: LocalBinding) -> set[Any]:
    """The vna's desired flows for `binding`'s datapath from `model` (vna.desired)."""
    store = ModelStore()
    store.load(model)
    state = DesiredState()
    state.rebuild(View(store.model, binding))
    return set(state.flows().values())


def binding_of(model: Model, dp: str) -> LocalBinding:
    """Ports as the vna would have them: the interfaces the datapath owns (not vifs) and
    the vifs bound there, one ofport each; the tunnel port."""
    ifaces = [u for u, row in model["interfaces"].items()
              if row.get("owner_datapath_uuid") == dp and row.get("mode") != "vif"]
    ifaces += [row["interface_uuid"] for row in model["active_interfaces"].values()
               if row["datapath_uuid"] == dp and row.get("state") == "active"]
    return LocalBinding(datapath_uuid=dp, transport="tunnel",
                        ports={u: n for n, u in enumerate(sorted(set(ifaces)), start=1)},
                        tunnel_ofport=TUNNEL_OFPORT)


def flow_share(full: Model, world: World, full_sample: int, slice_sample: int = 50
               ) -> dict[str, Any]:
    """Flows of a datapath from its slice vs from the whole model; slice cut times."""
    t = time.monotonic()
    index = ModelIndex(full)
    index_s = time.monotonic() - t
    step = max(1, len(world.datapaths) // slice_sample)
    dps = world.datapaths[::step][:slice_sample]
    cut_ms: list[float] = []
    slice_flows: list[int] = []
    full_flows: list[int] = []
    only_in_slice = 0
    full_ms: list[float] = []
    slice_ms: list[float] = []
    for i, dp in enumerate(dps):
        node, watch = world.nodes[dp], world.watch(dp)
        t = time.monotonic()
        keys = slice_keys(index, interest(index, index.datapaths_of(node, watch), watch))
        sliced = slice_model(index, keys)
        cut_ms.append((time.monotonic() - t) * 1000)
        binding = binding_of(full, dp)
        t = time.monotonic()
        mine = desired_flows(sliced, binding)
        slice_ms.append((time.monotonic() - t) * 1000)
        slice_flows.append(len(mine))
        if i < full_sample:
            t = time.monotonic()
            everything = desired_flows(full, binding)
            full_ms.append((time.monotonic() - t) * 1000)
            full_flows.append(len(everything))
            only_in_slice += len(mine - everything)
            log(f"agents: flows of {dp}: {len(everything)} from the whole model, "
                f"{len(mine)} from its slice ({len(mine - everything)} not in the former)")
    pairs = list(zip(slice_flows, full_flows, strict=False))
    return {
        "index_build_s": index_s, "datapaths": len(dps), "full_sample": len(full_flows),
        "cut_ms_mean": statistics.mean(cut_ms), "cut_ms_p99": percentile(cut_ms, 99),
        "slice_flows_mean": statistics.mean(slice_flows), "slice_flows_max": max(slice_flows),
        "full_flows_mean": statistics.mean(full_flows),
        # Over the datapaths whose flows were also computed from the whole model.
        "flows_share_pct": statistics.mean(s / f for s, f in pairs) * 100,
        "flows_share_max_pct": max(s / f for s, f in pairs) * 100,
        "slice_flows_not_in_full": only_in_slice,
        "compute_ms_full_mean": statistics.mean(full_ms),
        "compute_ms_slice_mean": statistics.mean(slice_ms),
    }


# ---------------------------------------------------------------------------- run

def raise_nofile(want: int = 65536) -> None:
    """Two sockets per agent here and one connection per agent in vnmgr (which inherits
    the limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def run(quick: bool, agents: int | None = None, interfaces: int | None = None,
        writes: int | None = None, keys: bool = False) -> dict[str, Any]:
    """`keys`: vnmgr with CURVE keys, the builder writing with the webapi key and the
    simulated agents holding the agent key (off by default, as the published figures)."""
    sizes = Sizes.of(quick, agents, interfaces, writes)
    raise_nofile()
    res: dict[str, Any] = {"sizes": asdict(sizes), "keys": keys}
    with Lab() as lab:
        services = Services(lab, keys=keys)
        vnmgr = services.start_vnmgr()
        rpc = services.rpc(120000)
        write = Writer(rpc)
        log(f"agents: building {sizes.agents} datapaths, {sizes.interfaces} interfaces "
            f"through vnmgr's RPC")
        cpu0 = cpu_seconds(vnmgr.pid)
        world = build(write, sizes)
        # The same kind of writes with no agent registered: vnmgr's cost without slicing.
        build_cpu = cpu_seconds(vnmgr.pid) - cpu0
        res["model"] = {**world.counts, "rpcs": world.rpcs, "seconds": world.seconds,
                        "ms_per_rpc": world.seconds / world.rpcs * 1000,
                        "vnmgr_cpu_ms_per_rpc_no_agents": build_cpu / world.rpcs * 1000}
        log(f"agents: model {res['model']}")
        full = rpc.call("snapshot")["model"]
        expected = expected_nodes(full, world)
        gc.collect()
        started = time.monotonic()
        swarm = Swarm(services.rpc_endpoint, services.pub_endpoint,
                      keys=services.client_keys(AGENT))
        for dp in world.datapaths:
            swarm.add(world.nodes[dp], world.watch(dp))
        thread = threading.Thread(target=swarm.run, name="swarm", daemon=True)
        thread.start()
        cpu_self0 = time.process_time()
        try:
            res["cold_start"] = cold_start(swarm, world, started, vnmgr.pid)
            res["cold_start"]["bench_process_cpu_s"] = time.process_time() - cpu_self0
            log(f"agents: cold start {res['cold_start']}")
            gc.freeze()  # the swarm's slices are long-lived: keep the collector off them
            res["slices"] = slice_share(swarm, full)
            log(f"agents: slices {res['slices']}")
            res["fan_out"] = fan_out(swarm, world, write, expected, sizes.writes, vnmgr.pid)
            res["fan_out"]["swarm_busy_s"] = swarm.loop_seconds
            log(f"agents: fan-out {res['fan_out']}")
            time.sleep(1.5)  # a heartbeat round: every agent at the latest seq
            res["verify"] = verify(swarm, world, rpc, sizes.verify_sample)
            res["verify"]["resyncs_total"] = sum(a.snapshots - 1 for a in swarm.agents.values())
            res["verify"]["gaps_total"] = sum(a.gaps for a in swarm.agents.values())
            log(f"agents: verify {res['verify']}")
            res["vnmgr_rss_kib"] = vm_rss_kib(vnmgr.pid)
            res["lost_message"] = lost_message(swarm, world, write)
            log(f"agents: a lost message {res['lost_message']}")
            res["restart"] = restart(swarm, world, services, vnmgr, write)
            log(f"agents: vnmgr restart {res['restart']}")
        finally:
            swarm.running = False
            thread.join(10)
            swarm.close()
            gc.unfreeze()
        full_end = rpc.call("snapshot")["model"]
    del swarm
    res["flows"] = flow_share(full_end, world, sizes.flow_sample)
    log(f"agents: flows {res['flows']}")
    return res


# ---------------------------------------------------------------------------- report

def report(res: dict[str, Any]) -> str:
    m = res["model"]
    out = [f"## 9. Slices and agents by the thousand: {m['datapaths']} agents, "
           f"{m['interfaces']} interfaces in {m['networks']} networks, {m['routers']} "
           f"routers (model: {m['rpcs']} RPCs in {m['seconds']:.0f} s)\n"]
    c = res["cold_start"]
    out.append(table("9a. Cold start: every agent subscribes and asks for its slice at once "
                     "(target < 60 s)",
                     ["agents", "last snapshot s", "p50 s", "vnmgr CPU s",
                      "vnmgr CPU ms/snapshot", "bench process CPU s"],
                     [[c["agents"], c["seconds"], c["p50_s"], c["vnmgr_cpu_s"],
                       c["vnmgr_cpu_ms_per_snapshot"], c["bench_process_cpu_s"]]]))
    f = res["fan_out"]
    out.append(table(f"9b. Fan-out of {f['writes']} vif writes (create + report) and "
                     f"{f['datapath_updates']} datapath updates, call to applied by each "
                     "agent that needs it (target p99 < 250 ms)",
                     ["kind", "(write, agent) pairs", "p50 ms", "p99 ms", "max ms"],
                     [["vif", f["vif_pairs"], f["vif_p50_ms"], f["vif_p99_ms"],
                       f["vif_max_ms"]],
                      ["datapath row", f["datapath_pairs"], f["datapath_p50_ms"],
                       f["datapath_p99_ms"], f["datapath_max_ms"]],
                      ["all", f["vif_pairs"] + f["datapath_pairs"], f["all_p50_ms"],
                       f["all_p99_ms"], max(f["vif_max_ms"], f["datapath_max_ms"] or 0)]]))
    out.append(table("9b/c. Delivery and vnmgr CPU",
                     ["recipients per vif", "misdelivered (vif, agent)", "never applied",
                      "resyncs (steady)", "events", "vnmgr CPU ms/event",
                      "minus idle heartbeats", "same writes, no agent (build)",
                      "vnmgr idle CPU %"],
                     [[f["recipients_per_vif_mean"], f["misdelivered_pairs"],
                       f["missing_pairs"], f["resyncs"], f["events"],
                       f["vnmgr_cpu_ms_per_event"], f["vnmgr_cpu_ms_per_event_minus_idle"],
                       m["vnmgr_cpu_ms_per_rpc_no_agents"],
                       f"{f['vnmgr_idle_cpu_per_s'] * 100:.1f}"]]))
    d = res["slices"]
    fl = res["flows"]
    out.append(table("9d/e. A datapath's slice against the whole model (target 4: <= 5 % "
                     "of the flows)",
                     ["", "whole model", "slice (mean)", "slice (max)", "share (mean)"],
                     [["rows", d["full_rows"], d["slice_rows_mean"], d["slice_rows_max"],
                       f"{d['rows_share_pct']:.2f} %"],
                      ["bytes", d["full_bytes"], d["slice_bytes_mean"], d["slice_bytes_max"],
                       f"{d['bytes_share_pct']:.2f} %"],
                      [f"flows ({fl['full_sample']} datapaths)", fl["full_flows_mean"],
                       fl["slice_flows_mean"], fl["slice_flows_max"],
                       f"{fl['flows_share_pct']:.2f} %"]]))
    out.append(f"Slice cut by vnet.slice: {fl['cut_ms_mean']:.2f} ms mean, "
               f"{fl['cut_ms_p99']:.2f} ms p99 over {fl['datapaths']} datapaths (index of "
               f"the whole model built in {fl['index_build_s']:.2f} s); desired flows "
               f"computed in {fl['compute_ms_full_mean']:.0f} ms from the whole model, "
               f"{fl['compute_ms_slice_mean']:.0f} ms from the slice; flows from a slice "
               f"that the whole model does not give: {fl['slice_flows_not_in_full']}.")
    v = res["verify"]
    out.append(f"Correctness: {v['compared']} agents compared with a fresh snapshot, "
               f"{v['differ']} differ; {v['agents_behind']} agents behind seq {v['seq']}; "
               f"{v['resyncs_total']} resyncs after the cold start ({v['gaps_total']} gaps); "
               f"vnmgr RSS {res['vnmgr_rss_kib'].get('VmRSS', 0) // 1024} MiB "
               f"(peak {res['vnmgr_rss_kib'].get('VmHWM', 0) // 1024} MiB).\n")
    lost, rs = res["lost_message"], res["restart"]
    out.append(f"Recovery: an agent that lost one message resynced in {lost['seconds']:.2f} s "
               f"(equal to a fresh snapshot after: {lost['equal_after']}); a vnmgr restart "
               f"(new epoch) and one write: all {m['datapaths']} agents resynced and held it "
               f"in {rs['seconds']:.1f} s ({rs['resyncs']} resyncs; {rs['equal']} of "
               f"{rs['compared']} sampled agents equal a fresh snapshot).\n")
    return "\n".join(out)


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--agents", type=int)
    parser.add_argument("--interfaces", type=int)
    parser.add_argument("--writes", type=int)
    parser.add_argument("--keys", action="store_true",
                        help="CURVE keys on (docs/messaging.md, 'Keys and roles')")
    args = parser.parse_args()
    res = run(args.quick, args.agents, args.interfaces, args.writes, args.keys)
    print(json.dumps(res, indent=1, default=str))
    print(report(res))


if __name__ == "__main__":
    main()
