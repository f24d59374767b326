"""The agent: turns the model slice and the bridge's ports into the switch's flows.

Everything that changes state arrives as a message on one queue (vnmgr snapshot/events,
OVSDB port changes, switch connect/disconnect) and is handled by one worker thread, so
the desired-state computation never races with itself. Work per message is limited to
what it touches: the feature owners named by vna.dirty, diffed in memory, and only the
difference is sent to the switch. Packet-ins punted by a feature's flows (vna.punt) take
the same queue, so their handlers see a consistent View; each local vif's meter
(vna.meters) bounds how many a VM can cause.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Histogram

from vna import malloc
from vna.actions import IN_PORT
from vna.announce import announcements
from vna.claim_reporter import ClaimReporter
from vna.claims import PortClaims
from vna.desired import DesiredState
from vna.dirty import dirty_for_ports, dirty_owners
from vna.features import edge_router
from vna.meter_syncer import MeterSyncer
from vna.meters import MeterConfig
from vna.modelstore import Change, ModelStore
from vna.neighbors import NeighborTable
from vna.ovsdb import OvsPort
from vna.punt import PacketIn, PacketOut, PuntStats, dispatch
from vna.reachability import Reachability
from vna.switch import SwitchConnection, SwitchError
from vna.syncer import Syncer
from vna.view import LocalBinding, View
from vnet.messaging import RpcClient
from vnet.metrics import LATENCY_BUCKETS
from vnet.slice import Watch

log = logging.getLogger("vna.agent")

# Seconds between MAC2MAC announcements; well under a learning switch's ageing (300 s).
ANNOUNCE_INTERVAL = 10.0
NEIGHBOR_TICK = 5.0  # seconds between MAC binding refresh/expiry passes (vna.neighbors)
# Packet-ins waiting on the worker queue beyond this are dropped on arrival: the per-port
# meters bound each VM, this bounds all of them together (model events must not wait).
MAX_PENDING_PACKET_INS = 1000


@dataclass
class AgentStats:
    events_applied: int = 0
    snapshots_applied: int = 0
    full_syncs: int = 0
    last_sync_seconds: float = 0.0
    applied_seq: int = 0
    sync_failures: int = 0
    started_at: float = field(default_factory=time.time)


class Agent:
    def __init__(self, node_id: str, transport: str, tunnel_port: str | None,
                 rpc: RpcClient | None = None, meters: MeterConfig | None = None,
                 wire_cache: bool = True) -> None:
        self.node_id = node_id
        self.transport = transport
        self.tunnel_port = tunnel_port
        self.rpc = rpc
        self.queue: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.store = ModelStore()
        self.desired = DesiredState()
        self.syncer = Syncer(cache_wire=wire_cache)
        self.meters = MeterSyncer(meters)
        self.claims = PortClaims()
        self.reporter = ClaimReporter(rpc)
        self.punt_stats = PuntStats()
        self.reachability = Reachability()
        self.neighbors = NeighborTable()
        self._pending_lock = threading.Lock()
        self._pending_packet_ins = 0
        self.packet_ins_backlogged = 0
        self.stats = AgentStats()
        # Registered in the vna's metrics registry by vna.metrics (unregistered in tests).
        self.convergence = Histogram(
            "vnet_vna_convergence_seconds", "Seconds from a vnmgr snapshot or change "
            "message reaching the vna to its flows being sent to the switch",
            ["kind", "node_id"], buckets=LATENCY_BUCKETS, registry=None)
        for kind in ("snapshot", "changes"):
            self.convergence.labels(kind, node_id)
        self.ports: dict[str, OvsPort] = {}
        self.connection: SwitchConnection | None = None
        self.view: View | None = None
        self.have_model = False
        # The last full sync failed: what the switch holds is unknown, so the next
        # change syncs in full rather than adding a diff to an unknown table.
        self.resync_pending = False
        self.synced = threading.Event()  # set after each successful sync; tests and bench
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="agent", daemon=True)
        self.on_synced: Callable[[], None] | None = None
        # Told what the bridge shows whenever it changes (VnmgrLink.set_watch): vnmgr
        # sends this datapath's slice of the model (vnet.slice).
        self.on_watch: Callable[[Watch], None] | None = None
        # Called (worker thread) when the switch connects or disconnects: VnmgrLink.report_now.
        self.on_status_change: Callable[[], None] | None = None

    # ------------------------------------------------------------ inputs (any thread)
    def start(self) -> None:
        self._thread.start()
        threading.Thread(target=self._tick, name="neighbor-tick", daemon=True).start()

    def _tick(self) -> None:
        while not self._stop.wait(NEIGHBOR_TICK):
            self.queue.put(("neighbor_tick", None))

    def stop(self) -> None:
        self.reporter.stop()
        self._stop.set()
        self.queue.put(("stop", None))
        self._thread.join(timeout=5)

    def deliver(self, kind: str, seq: int, payload: Any) -> None:
        """A snapshot or changes from vnmgr (link thread); the time of arrival goes along
        for the convergence histogram."""
        self.queue.put((kind, (seq, payload, time.perf_counter())))

    def on_ports(self, ports: dict[str, OvsPort]) -> None:
        self.queue.put(("ports", ports))

    def switch_connected(self, connection: SwitchConnection) -> None:
        self.queue.put(("connected", connection))

    def switch_disconnected(self, connection: SwitchConnection) -> None:
        self.queue.put(("disconnected", connection))

    def packet_in(self, connection: SwitchConnection, packet_in: PacketIn) -> None:
        with self._pending_lock:
            if self._pending_packet_ins >= MAX_PENDING_PACKET_INS:
                self.packet_ins_backlogged += 1
                return
            self._pending_packet_ins += 1
        self.queue.put(("packet_in", (connection, packet_in)))

    def status(self) -> dict[str, Any]:
        return {"node_id": self.node_id, "connected": self.connection is not None,
                "dpid": f"0x{self.connection.dpid:016x}" if self.connection else None,
                "datapath_uuid": self._datapath_uuid(), "flows": len(self.desired.flows()),
                "applied_seq": self.stats.applied_seq,
                **self.reachability.report(self.view)}

    # ------------------------------------------------------------ worker
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                kind, payload = self.queue.get(timeout=ANNOUNCE_INTERVAL)
            except queue.Empty:
                self._announce()
                continue
            if kind == "stop":
                return
            try:
                getattr(self, f"_on_{kind}")(payload)
            except SwitchError as exc:
                # The switch rejected or missed a change: its table is now unknown to
                # us, so the next step is a full diff against what it really holds.
                self.stats.sync_failures += 1
                log.error("sync failed (%s); full resync", exc)
                self._full_sync()
            except Exception:
                log.exception("agent failed handling %s", kind)

    def _on_snapshot(self, payload: tuple[int, dict, float]) -> None:
        seq, model, received = payload
        self.store.load(model)
        # The snapshot's text is gone: hand its pages back before the flows are built
        # (6.8 MiB less peak RSS at 10,000 interfaces).
        malloc.trim()
        self.have_model = True
        self.reporter.resend()
        self.stats.snapshots_applied += 1
        self.stats.applied_seq = seq
        self._rebuild()
        self._full_sync()
        self._converged("snapshot", received)

    def _on_changes(self, payload: tuple[int, list, float]) -> None:
        seq, changes, received = payload
        self._apply_changes(seq, changes)
        self._converged("changes", received)

    def _converged(self, kind: str, received: float) -> None:
        """Observe arrival -> flows installed, only when a switch took the flows."""
        if self.connection is not None and not self.resync_pending:
            self.convergence.labels(kind, self.node_id).observe(time.perf_counter() - received)

    def _apply_changes(self, seq: int, changes: list) -> None:
        old_view = self.view
        applied = self.store.apply(changes)
        self.stats.events_applied += 1
        self.stats.applied_seq = seq
        if old_view is None or self.connection is None:
            self._rebuild()
            if self.view is not None:
                # The switch became a datapath of the model again (its row came back):
                # what it holds is whatever was left, so diff it in full.
                self._full_sync()
            return
        new_view = self._make_view(applied)
        if new_view is None or new_view.binding.datapath_uuid != old_view.binding.datapath_uuid:
            self._rebuild()
            self._full_sync()
            return
        dirty = dirty_owners(applied, old_view, new_view)
        dirty |= dirty_for_ports(old_view.binding, new_view.binding, new_view)
        self._apply(new_view, dirty)

    def _on_ports(self, ports: dict[str, OvsPort]) -> None:
        self.ports = ports
        self._watch()
        old_view = self.view
        new_view = self._make_view([])
        if old_view is None or new_view is None or self.connection is None:
            self._rebuild()
            return
        self._apply(new_view, dirty_for_ports(old_view.binding, new_view.binding, new_view))

    def _on_packet_in(self, payload: tuple[SwitchConnection, PacketIn]) -> None:
        connection, packet_in = payload
        with self._pending_lock:
            self._pending_packet_ins -= 1
        if self.view is None or connection is not self.connection:
            self.punt_stats.dropped["no_view"] += 1
            return

        def later(out: PacketOut, in_port: int = packet_in.in_port) -> None:
            # Any thread (e.g. a DNS resolver thread): the worker sends it.
            port = in_port if out.port == IN_PORT else int(out.port)
            self.queue.put(("packet_out", (connection, PacketOut(port, out.data))))

        packet_in = dataclasses.replace(packet_in, later=later, neighbors=self.neighbors)
        for out in dispatch(self.view, packet_in, stats=self.punt_stats):
            self._packet_out(connection, out)
        binding = getattr(self.view, "binding", None)
        if binding is not None and self.neighbors.snapshot() != binding.neighbors:
            self._on_ports(self.ports)  # a MAC binding learned: recompute its network

    def _on_neighbor_tick(self, _payload: None) -> None:
        """Re-ask the MAC bindings due for a refresh; drop the expired ones."""
        due, expired = self.neighbors.tick()
        if self.view is not None and self.connection is not None:
            for network, address in due:
                request = edge_router.arp_request(self.view, network, address)
                if request is not None:
                    self._packet_out(self.connection, request)
        if expired:
            self._on_ports(self.ports)

    def _on_packet_out(self, payload: tuple[SwitchConnection, PacketOut]) -> None:
        """A handler's deferred answer (PacketIn.later); dropped if the switch
        reconnected meanwhile (its port numbers may have changed)."""
        connection, out = payload
        if connection is not self.connection:
            self.punt_stats.dropped["no_view"] += 1
            return
        self.punt_stats.sent += 1
        self._packet_out(connection, out)

    def _packet_out(self, connection: SwitchConnection, out: PacketOut) -> None:
        try:
            connection.packet_out(int(out.port), out.data)
        except SwitchError:
            # The connection is going away; the disconnect event follows. Not a
            # reason for a flow resync, which a SwitchError from a handler means.
            self.punt_stats.dropped["send_failed"] += 1

    def _on_connected(self, connection: SwitchConnection) -> None:
        self.connection = connection
        self._watch()
        self.meters.forget()
        self._rebuild()
        self._full_sync()
        self._report_connected(True)

    def _on_disconnected(self, connection: SwitchConnection) -> None:
        if self.connection is connection:
            self.connection = None
            self._report_connected(False)

    def _watch(self) -> None:
        """What vnmgr slices the model by: the switch's dpid and every port's iface-id and
        name (a VM port is claimed only if its interface is in the slice)."""
        if self.on_watch is None:
            return
        dpid = f"0x{self.connection.dpid:016x}" if self.connection else None
        self.on_watch(Watch(dpid, frozenset(p.iface_id for p in self.ports.values()
                                            if p.iface_id),
                            frozenset(p.name for p in self.ports.values())))

    # ------------------------------------------------------------ computation
    def _datapath_uuid(self) -> str | None:
        if self.connection is None or not self.have_model:
            return None
        dpid = f"0x{self.connection.dpid:016x}"
        return next((uuid for uuid, dp in self.store.model["datapaths"].items()
                     if dp["dpid"] == dpid), None)

    def _binding(self, view: View, datapath_uuid: str) -> LocalBinding:
        """Which model interface each bridge port is (vna.claims): the vifs the model says
        are bound here, and the other interfaces this datapath owns.  A changed set of
        vif claims is reported to vnmgr, which decides the bindings."""
        claims, owned = self.claims.update(view, datapath_uuid, self.ports)
        self.reporter.offer(datapath_uuid, claims, view.claims_on(datapath_uuid))
        bound = {uuid: claim.ofport for uuid, claim in claims.items()
                 if view.host_datapath(uuid) == datapath_uuid}
        tunnel = self.ports.get(self.tunnel_port) if self.tunnel_port else None
        return LocalBinding(datapath_uuid=datapath_uuid, transport=self.transport,
                            ports={**owned, **bound},
                            tunnel_ofport=tunnel.ofport if tunnel else None,
                            neighbors=self.neighbors.snapshot())

    def _make_view(self, changes: list[Change] | None = None) -> View | None:
        """The view after `changes` (derived from the current one), or a fresh one."""
        datapath_uuid = self._datapath_uuid()
        if datapath_uuid is None:
            return None
        unbound = LocalBinding(datapath_uuid=datapath_uuid, transport=self.transport)
        old = self.view
        if changes is not None and old is not None and old.binding.datapath_uuid == datapath_uuid:
            view = View.updated(old, changes, self.store.model, unbound)
        else:
            view = View(self.store.model, unbound)
        view.binding = self._binding(view, datapath_uuid)
        return view

    def _rebuild(self) -> None:
        self.view = self._make_view()
        if self.view is None:
            if self.connection is not None and self.have_model:
                log.warning("switch %016x is not a datapath of the model: no flows",
                            self.connection.dpid)
            self.desired = DesiredState()
            return
        self.desired = DesiredState()
        self.desired.rebuild(self.view)
        # Tens of thousands of long-lived model rows and flows make every cyclic-GC pass
        # slow (a 150 ms tail on events at 10k interfaces, measured in bench/). They are
        # freed by reference counting anyway: keep the collector off them.
        gc.freeze()
        # glibc keeps the heap pages freed by the previous View and flows and by the
        # snapshot's decoding (its trim threshold rises with the largest block it freed,
        # the 11 MiB snapshot reply): the full sync's wire bytes would come on top of
        # them (6.7 MiB more peak RSS at 10,000 interfaces). Under 1 ms.
        malloc.trim()

    def _apply(self, view: View, dirty: set) -> None:
        self.view = view
        if not dirty:
            return
        added, removed = self.desired.update(view, dirty)
        if self.connection is not None and self.resync_pending:
            self._full_sync()
            return
        if self.connection is not None:
            # Meters first: the flows being added may name them (vna.meters).
            meters = self.meters.before_flows(self.connection, view)
            if added or removed:
                stats = self.syncer.apply(self.connection, added, removed)
                self.stats.last_sync_seconds = stats.seconds
            self.meters.after_flows(self.connection, meters)
        self._synced()

    def _full_sync(self) -> None:
        if self.connection is None or not self.have_model:
            return
        try:
            meters = self.meters.before_flows(self.connection, self.view, full=True)
            stats = self.syncer.full_sync(self.connection, self.desired.flows())
            self.meters.after_flows(self.connection, meters)
        except SwitchError as exc:
            self.stats.sync_failures += 1
            self.resync_pending = True
            log.error("full sync failed: %s", exc)
            return
        self.resync_pending = False
        self.stats.full_syncs += 1
        self.stats.last_sync_seconds = stats.seconds
        self._synced()

    def _announce(self) -> None:
        if self.connection is None or self.view is None:
            return
        for port, frame in announcements(self.view):
            self.connection.packet_out(port, frame)

    def _synced(self) -> None:
        self._announce()
        self.synced.set()
        if self.on_synced:
            self.on_synced()

    def _report_connected(self, _connected: bool) -> None:
        """The switch came or went: vnmgr hears it in a status report sent now (it alone
        writes the datapath's is_connected, from these reports and their absence)."""
        if self.on_status_change is not None:
            self.on_status_change()
