"""vnmgr's request loop: one request at a time, one transaction per write, one event each.

Serial processing is the point: it makes vnmgr the single writer, gives events a total
order, and makes a snapshot consistent with the sequence number it reports without any
locking. The database, not vnmgr's memory, holds the sequence (table `events`), so a
restarted vnmgr continues the numbering and agents see no false gap.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any

import zmq
from prometheus_client import Histogram
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import sessionmaker

from vnet import models as m
from vnet.errors import ApiError
from vnet.keys import ServerKeys
from vnet.messaging import GLOBAL_TOPIC, HEARTBEAT_TOPIC, decode, encode, node_topic
from vnet.metrics import LATENCY_BUCKETS
from vnet.serialize import snapshot_model
from vnet.slice import ModelIndex, Watch
from vnmgr import accept
from vnmgr.events import EventLog
from vnmgr.handlers import HANDLERS, Tx
from vnmgr.liveness import Liveness
from vnmgr.params import Params
from vnmgr.roles import RoleAuthenticator, refusal
from vnmgr.subscriptions import Node, Subscriptions

log = logging.getLogger("vnmgr")

READ_OPS = ("snapshot", "health", "agent_status", "agents", "watch")
# Every op a request may name, for the latency histogram's labels (others: "unknown").
OPS = tuple(sorted({*READ_OPS, *(op for op, _resource in HANDLERS)}))
# How often the stored is_connected is compared with the agents' reports (seconds).
LIVENESS_INTERVAL = 0.5


class Vnmgr:
    def __init__(self, sessions: sessionmaker, rpc_endpoint: str, pub_endpoint: str,
                 heartbeat_interval: float = 1.0, context: zmq.Context | None = None,
                 node_expiry: float = 300.0, agent_timeout: float = 4.0,
                 events_keep: int = 10000, keys: ServerKeys | None = None) -> None:
        """agent_timeout: seconds without a status report after which an agent's datapath
        is marked disconnected (vnmgr.liveness); events_keep: rows of the events table
        kept (vnmgr.events).  Raises ValueError for events_keep < 1.  With `keys`, both
        sockets are CURVE servers that admit only the known client keys, and each request
        is checked against its key's role (vnmgr.roles)."""
        self.events = EventLog(events_keep)  # first: a bad events_keep binds no socket
        self.sessions = sessions
        self.context = context or zmq.Context.instance()
        self.keys = keys
        self.authenticator: RoleAuthenticator | None = None
        if keys is not None:
            # One ZAP handler per context, started before any CURVE socket binds.
            self.authenticator = RoleAuthenticator(self.context, keys)
            self.authenticator.start()
        self.rpc = self.context.socket(zmq.ROUTER)
        self.rpc.setsockopt(zmq.LINGER, 0)
        self.pub = self.context.socket(zmq.PUB)
        self.pub.setsockopt(zmq.LINGER, 0)
        self.pub.setsockopt(zmq.SNDHWM, 100000)
        if keys is not None:
            keys.apply(self.rpc)
            keys.apply(self.pub)
        self.rpc.bind(rpc_endpoint)
        self.pub.bind(pub_endpoint)
        self.heartbeat_interval = heartbeat_interval
        self.node_expiry = node_expiry
        self.agents: dict[str, dict[str, Any]] = {}
        self.counters = {"requests": 0, "writes": 0, "events_published": 0, "errors": 0,
                         "slice_messages": 0, "refused": 0, "liveness_updates": 0}
        self.liveness = Liveness(agent_timeout)
        # Registered in vnmgr's metrics registry by vnmgr.metrics (unregistered in tests).
        self.request_latency = Histogram(
            "vnet_vnmgr_request_seconds", "Seconds vnmgr spent handling a request, from "
            "its dequeueing to its reply (a write includes its commit and publication)",
            ["op"], buckets=LATENCY_BUCKETS, registry=None)
        for op in (*OPS, "unknown"):
            self.request_latency.labels(op)
        self.running = True
        self._seq: int | None = None
        # The model in memory for slicing (vnmgr.subscriptions), loaded on first use; its
        # epoch changes whenever it is (re)loaded, which makes every agent resync.
        self.subscriptions: Subscriptions | None = None
        self._index_seq = 0
        self.epoch = ""

    # ------------------------------------------------------------ loop
    def serve_forever(self) -> None:
        next_heartbeat = next_liveness = 0.0
        try:
            # Load the model now: the epoch heartbeat tells agents of a restarted vnmgr
            # to resync at once, not at the first write.
            self._subscriptions()
        except OperationalError as exc:
            log.error("database unavailable at start (%s); loading the model later", exc.orig)
        while self.running:
            if self.rpc.poll(200, zmq.POLLIN):
                self._serve_one()
            elif self.events.behind:
                self._prune(None)  # idle: catch up on a long unpruned history
            self.liveness.tick()
            now = time.monotonic()
            if now >= next_heartbeat:
                self._heartbeat()
                next_heartbeat = now + self.heartbeat_interval
            if now >= next_liveness:
                self._update_liveness()
                next_liveness = now + LIVENESS_INTERVAL

    def close(self) -> None:
        self.rpc.close()
        self.pub.close()
        if self.authenticator is not None:
            self.authenticator.stop()

    def _serve_one(self) -> None:
        frames = self.rpc.recv_multipart(copy=False)
        identity, body = frames[0].bytes, frames[-1].bytes
        role = self._role(frames[-1])
        try:
            request = decode(body)
            if not isinstance(request, dict):
                raise ValueError("request is not an object")
        except ValueError:
            self._reply(identity, {"ok": False, "status": 400, "error": "bad_request",
                                   "message": "request is not valid JSON", "field": None})
            return
        if request.get("expires_at") and time.time() > float(request["expires_at"]):
            if request.get("op") == "agent_status":
                # Late, but the agent was alive when it sent it.
                self._note_agent(request.get("params") or {})
            # The client gave up and reported 503; applying it now would surprise it.
            log.warning("dropped expired request op=%s resource=%s", request.get("op"),
                        request.get("resource"))
            return
        self.counters["requests"] += 1
        self._reply(identity, self.handle(request, role))

    def _role(self, frame: zmq.Frame) -> str | None:
        """The role ZAP gave the sender's key (vnmgr.roles); None when keys are off. A
        frame without one (which ZAP should make impossible) gets a role nothing allows."""
        if self.keys is None:
            return None
        try:
            return str(frame.get("User-Id"))
        except zmq.ZMQError:
            return ""

    def _reply(self, identity: bytes, reply: dict[str, Any]) -> None:
        self.rpc.send_multipart([identity, b"", encode(reply)])

    # ------------------------------------------------------------ requests
    def handle(self, request: dict[str, Any], role: str | None = None) -> dict[str, Any]:
        """The reply to one request from a client of `role` (None: keys are off):
        {"ok": true, "result"} or {"ok": false, "status", "error", "message", "field"};
        timed in vnet_vnmgr_request_seconds."""
        started = time.perf_counter()
        try:
            return self._handle(request, role)
        finally:
            op = request.get("op")
            self.request_latency.labels(op if op in OPS else "unknown").observe(
                time.perf_counter() - started)

    def _handle(self, request: dict[str, Any], role: str | None) -> dict[str, Any]:
        op, resource = request.get("op"), request.get("resource")
        try:
            refused = refusal(role, request)
            if refused is not None:
                self.counters["refused"] += 1
                log.warning("refused op=%s resource=%s to role %s", op, resource, role)
                raise refused
            if op in READ_OPS:
                return {"ok": True, "result": getattr(self, f"_op_{op}")(request)}
            fn = HANDLERS.get((str(op), str(resource)))
            if fn is None:
                raise ApiError(400, f"unknown operation {op} on {resource}")
            return {"ok": True, "result": self._write(fn, request)}
        except ApiError as exc:
            return {"ok": False, "status": exc.status, **exc.to_dict()}
        except OperationalError as exc:
            log.error("database unavailable: %s", exc.orig)
            self._seq = None
            return {"ok": False, "status": 503, "error": "unavailable",
                    "message": "database unavailable", "field": None}
        except IntegrityError as exc:
            return {"ok": False, "status": 409, "error": "conflict",
                    "message": f"conflicts with an existing row: {exc.orig}", "field": None}
        except Exception:
            self.counters["errors"] += 1
            log.exception("internal error op=%s resource=%s", op, resource)
            return {"ok": False, "status": 500, "error": "internal",
                    "message": "internal error in vnmgr", "field": None}

    def _write(self, fn: Any, request: dict[str, Any]) -> Any:
        raw, sent_as = accept.request_params(str(request.get("op")),
                                             str(request.get("resource")),
                                             request.get("params"))
        subscriptions = self._subscriptions()
        with self.sessions() as session, session.begin():
            tx = Tx(session)
            try:
                result = fn(tx, request.get("uuid"), Params(raw))
            except ApiError as exc:
                raise accept.renamed(exc, sent_as) from None
            changes = tx.changes.changes()
            if not changes:
                # Nothing changed (a PUT of the same values, a port report equal to the
                # last one): no event, so agents are not woken for nothing.
                return result
            seq = self.events.append(session, changes)
        # Published only once committed: an agent's snapshot can never be older than an
        # event it has already seen.
        self._seq = seq
        self.counters["writes"] += 1
        # Unsliced consumers read the whole event on `global`; each agent its slice.
        self.pub.send_multipart([GLOBAL_TOPIC, encode({"seq": seq, "changes": changes})])
        self.counters["events_published"] += 1
        self._index_seq = seq
        self._prune(seq)
        try:
            parts = subscriptions.on_event(changes)
        except Exception:
            # Never fail a committed write over slicing: forget the in-memory model; the
            # reload brings a new epoch and every agent resyncs from a fresh snapshot.
            log.exception("slicing event %d failed; reloading the model", seq)
            self.subscriptions = None
            return result
        self._send_parts(seq, parts)
        return result

    def _prune(self, seq: int | None) -> None:
        """After the commit of event `seq`, or when idle (None)."""
        try:
            if seq is None:
                self.events.catch_up(self.sessions.begin)
            else:
                self.events.committed(self.sessions.begin, seq)
        except OperationalError as exc:
            # The write is committed and published; the next batch prunes what this missed.
            log.warning("pruning events failed: %s", exc.orig)

    def _update_liveness(self) -> None:
        """Write is_connected where the agents' reports (or their silence) disagree with
        the stored value: ordinary numbered updates, as from the API."""
        try:
            with self.sessions() as session:
                stored = {uuid: connected for uuid, connected in session.execute(
                    select(m.Datapath.uuid, m.Datapath.is_connected))}
        except OperationalError:
            return
        for uuid, connected in self.liveness.changes(stored).items():
            reply = self._set_connected(uuid, connected)
            if reply["ok"]:
                self.counters["liveness_updates"] += 1
                log.info("datapath %s %s", uuid, "connected" if connected else
                         "disconnected (its vna reports no switch, or has not reported for "
                         f"{self.liveness.timeout:g}s)")
            else:
                log.warning("could not mark datapath %s is_connected=%s: %s", uuid,
                            connected, reply.get("message"))

    def _set_connected(self, uuid: str, connected: bool) -> dict[str, Any]:
        """Write is_connected as an update of the datapath (read-only in the API)."""
        def update(tx: Tx, _uuid: str | None, _params: Params) -> Any:
            datapath = tx.get(m.Datapath, uuid)
            datapath.is_connected = connected
            return tx.row(tx.changes.touch(datapath))

        try:
            return {"ok": True, "result": self._write(update, {"op": "update",
                                                              "resource": "datapaths"})}
        except ApiError as exc:  # deleted meanwhile
            return {"ok": False, "message": exc.message}
        except Exception as exc:  # the database away...: never end the loop over it
            self._seq = None
            return {"ok": False, "message": f"{type(exc).__name__}: {exc}"}

    def _note_agent(self, status: dict[str, Any]) -> None:
        node = str(status.get("node_id", ""))
        if node:
            datapath = status.get("datapath_uuid")
            self.liveness.report(node, status.get("connected") is True,
                                 datapath if isinstance(datapath, str) else None)

    def _send_parts(self, seq: int, parts: list[tuple[Node, list[dict[str, Any]]]]) -> None:
        """One message per node: topic, header {seq, n}, body {changes}.  Nodes given the
        same change list share its encoding (a datapath row to every node)."""
        bodies: dict[int, bytes] = {}
        for node, changes in parts:
            body = bodies.get(id(changes))
            if body is None:
                body = bodies[id(changes)] = encode({"changes": changes})
            node.n += 1
            self.pub.send_multipart([node_topic(node.node_id),
                                     encode({"seq": seq, "n": node.n}), body])
            self.counters["slice_messages"] += 1

    def _subscriptions(self) -> Subscriptions:
        """The in-memory model, (re)loaded when missing or behind the database (which
        only happens when the database was replaced or written by someone else)."""
        seq = self.current_seq()
        if self.subscriptions is None or seq != self._index_seq:
            started = time.monotonic()
            with self.sessions() as session, session.begin():
                seq = session.scalar(select(func.max(m.Event.seq))) or 0
                model = snapshot_model(session)
            self.subscriptions = Subscriptions(ModelIndex(model))
            self._index_seq = self._seq = seq
            self.epoch = secrets.token_hex(8)
            log.info("model loaded for slicing at seq %d in %.2fs (epoch %s)", seq,
                     time.monotonic() - started, self.epoch)
        return self.subscriptions


    def _heartbeat(self) -> None:
        try:
            seq = self.current_seq()
        except OperationalError:
            return
        self.pub.send_multipart([GLOBAL_TOPIC, encode({"heartbeat": True, "seq": seq})])
        if self.subscriptions is None:
            return
        for node_id in self.subscriptions.expire(self.node_expiry):
            log.info("node %s silent for %.0fs: its subscription is dropped", node_id,
                     self.node_expiry)
        # Agents: the epoch on one shared topic (a new one means "resync": vnmgr forgot
        # what they watch), and on each node's topic the number of its last message.
        self.pub.send_multipart([HEARTBEAT_TOPIC, encode({"seq": seq, "epoch": self.epoch})])
        for node in self.subscriptions.nodes.values():
            self.pub.send_multipart([node_topic(node.node_id),
                                     encode({"heartbeat": True, "seq": seq, "n": node.n}),
                                     b"{}"])

    def current_seq(self) -> int:
        if self._seq is None:
            with self.sessions() as session:
                self._seq = session.scalar(select(func.max(m.Event.seq))) or 0
        return self._seq

    # ------------------------------------------------------------ read ops
    def _op_snapshot(self, request: dict[str, Any]) -> dict[str, Any]:
        """The whole model, or with params {node_id, watch} that node's slice plus `n`
        (its topic's last message number, included) and `epoch` (docs/messaging.md)."""
        params = request.get("params") or {}
        if params.get("node_id") is None:
            with self.sessions() as session, session.begin():
                seq = session.scalar(select(func.max(m.Event.seq))) or 0
                return {"seq": seq, "model": snapshot_model(session)}
        node_id, watch = self._node_params(params)
        subscriptions = self._subscriptions()
        model, n = subscriptions.register(node_id, watch)
        return {"seq": self._index_seq, "model": model, "n": n, "epoch": self.epoch}

    def _op_watch(self, request: dict[str, Any]) -> dict[str, Any]:
        """An agent's bridge changed (ports, dpid): its slice follows, as a message on its
        topic; an unknown node (vnmgr restarted since its snapshot) must resync."""
        node_id, watch = self._node_params(request.get("params") or {})
        subscriptions = self._subscriptions()
        if node_id not in subscriptions.nodes:
            raise ApiError(409, f"node {node_id} has no snapshot from this vnmgr: resync",
                           "node_id")
        self._send_parts(self._index_seq, subscriptions.set_watch(node_id, watch))
        return {"seq": self._index_seq, "n": subscriptions.nodes[node_id].n}

    @staticmethod
    def _node_params(params: dict[str, Any]) -> tuple[str, Watch]:
        node_id = params.get("node_id")
        if not isinstance(node_id, str) or not node_id:
            raise ApiError(422, "node_id must be a non-empty string", "node_id")
        try:
            return node_id, Watch.from_params(params.get("watch"))
        except ValueError as exc:
            raise ApiError(422, str(exc), "watch") from None

    def _op_health(self, _request: dict[str, Any]) -> dict[str, Any]:
        with self.sessions() as session:
            session.execute(text("SELECT 1"))
        return {"seq": self.current_seq(), "database": "ok"}

    def _op_agent_status(self, request: dict[str, Any]) -> dict[str, Any]:
        status = dict(request.get("params") or {})
        node = str(status.get("node_id", ""))
        if not node:
            raise ApiError(422, "node_id is required", "node_id")
        status["reported_at"] = time.time()
        self.agents[node] = status
        self._note_agent(status)
        nodes = self.subscriptions.nodes if self.subscriptions is not None else {}
        if node in nodes:
            nodes[node].seen_at = time.monotonic()
        # An agent this vnmgr holds no subscription for (restarted, or expired it) is
        # receiving nothing: it must take a snapshot.
        return {"seq": self.current_seq(), "resync": node not in nodes}

    def _op_agents(self, _request: dict[str, Any]) -> dict[str, Any]:
        seq = self.current_seq()
        nodes = self.subscriptions.nodes if self.subscriptions is not None else {}
        return {"seq": seq, "agents": {
            node: {**status, "lag": max(0, seq - int(status.get("seq", 0))),
                   "age": time.time() - status["reported_at"],
                   "slice_rows": (len(nodes[node].keys) + len(self.subscriptions.shared)
                                  if self.subscriptions is not None and node in nodes
                                  else None)}
            for node, status in self.agents.items()}}
