"""The OpenFlow 1.3 side of the vna: an os-ken app and a blocking connection wrapper.

os-ken delivers replies on its own event thread; the agent works on its own worker
thread and must not block os-ken's. `SwitchConnection` bridges the two: the worker
sends a request and waits on a per-xid waiter that the app's handlers complete.
"""

from __future__ import annotations

import itertools
import logging
import struct
import threading
from collections import Counter
from collections.abc import Iterable
from typing import Any, NamedTuple, Protocol

from os_ken.base import app_manager
from os_ken.controller import controller as os_ken_controller
from os_ken.controller import ofp_event
from os_ken.controller.handler import (
    CONFIG_DISPATCHER,
    DEAD_DISPATCHER,
    MAIN_DISPATCHER,
    set_ev_cls,
)
from os_ken.ofproto import ofproto_v1_3, ofproto_v1_3_parser

from vna import ofwire
from vna.punt import PacketIn

log = logging.getLogger("vna.switch")

BOTH = [CONFIG_DISPATCHER, MAIN_DISPATCHER]
# ofp_packet_in_reason (OpenFlow 1.3 section 7.4.1) -> metric/log label
PACKET_IN_REASONS = {0: "no_match", 1: "action", 2: "invalid_ttl"}


class SwitchError(Exception):
    pass


# --- flow stats without os-ken's match/instruction objects ------------------------------
class FlowKey(NamedTuple):
    """What the syncer needs of one installed flow: its ``ofp_flow_stats`` entry's
    length (bytes, to step to the next), table_id and cookie."""

    length: int
    table_id: int
    cookie: int


# ofp_flow_stats (OpenFlow 1.3.5 section 7.3.5.2): length u16 at 0, table_id u8 at 2,
# then duration, priority, timeouts, flags, pad; cookie u64 at offset 24.
_FLOW_KEY = struct.Struct("!HB21xQ")


class FlowKeyParser:
    """Stands in for os-ken's OFPFlowStats as the body parser of OFPMP_FLOW replies:
    reads (length, table_id, cookie) at fixed offsets and skips match and instructions,
    which cost ~95 % of parsing a dump (31k flows: 3 s -> a few tens of ms)."""

    @staticmethod
    def parser(buf: bytes | bytearray, offset: int) -> FlowKey:
        return FlowKey._make(_FLOW_KEY.unpack_from(buf, offset))


def flow_keys(body: bytes | bytearray, offset: int = 0) -> list[FlowKey]:
    """Every (length, table_id, cookie) of a run of ofp_flow_stats entries (a multipart
    reply body from `offset`), stepping by each entry's length."""
    keys, end = [], len(body)
    while offset < end:
        key = FlowKey._make(_FLOW_KEY.unpack_from(body, offset))
        if key.length < _FLOW_KEY.size:
            raise ValueError(f"ofp_flow_stats entry of {key.length} bytes at {offset}")
        keys.append(key)
        offset += key.length
    return keys


class OFPFlowStatsReply(ofproto_v1_3_parser.OFPFlowStatsReply):
    """os-ken's OFPMP_FLOW reply class with FlowKeyParser as its body parser.  It keeps
    os-ken's class name, which is what os-ken dispatches events by
    (EventOFPFlowStatsReply), so handlers and flags work unchanged; `body` is a list of
    FlowKey instead of OFPFlowStats."""

    cls_stats_body_cls = FlowKeyParser


def install_flow_key_parser() -> None:
    """Make this process's os-ken parse OFPMP_FLOW replies into FlowKeys (the vna is
    the only os-ken app here, and dump_flows its only flow stats user).  Idempotent."""
    ofproto_v1_3_parser.OFPMultipartReply._STATS_MSG_TYPES[
        ofproto_v1_3.OFPMP_FLOW] = OFPFlowStatsReply


install_flow_key_parser()


class SwitchListener(Protocol):
    def switch_connected(self, connection: SwitchConnection) -> None: ...
    def switch_disconnected(self, connection: SwitchConnection) -> None: ...
    def packet_in(self, connection: SwitchConnection, packet_in: PacketIn) -> None: ...


class _Waiter:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.replies: list[Any] = []
        self.error: Any = None


class SwitchConnection:
    _bundle_ids = itertools.count(1)
    bundle_chunk = ofwire.BUNDLE_CHUNK  # bytes per piece of a bundle written (send_bundle)

    def __init__(self, datapath: Any) -> None:
        self.datapath = datapath
        self.dpid: int = datapath.id
        self.ofp = datapath.ofproto
        self.parser = datapath.ofproto_parser
        self._waiters: dict[int, _Waiter] = {}
        # The bundle being sent: (first xid, number of xids, errors as (index, text)),
        # so errors on its bundle-add xids (no waiter each) are matched to it.
        self._bundle: tuple[int, int, list[tuple[int, str]]] | None = None
        self._lock = threading.Lock()
        self.errors = 0
        self.alive = True

    # -------------------------------------------------------- plumbing
    def _send(self, msg: Any, expect_reply: bool = True) -> int:
        with self._lock:
            self.datapath.set_xid(msg)
            if expect_reply:
                # Registered before sending: the reply may beat us back.
                self._waiters.setdefault(msg.xid, _Waiter())
        if not self.datapath.send_msg(msg):
            raise SwitchError("switch connection closed")
        return msg.xid

    def _wait(self, xid: int, timeout: float) -> _Waiter:
        waiter = self._waiters[xid]
        try:
            if not waiter.done.wait(timeout):
                raise SwitchError(f"no reply from switch {self.dpid:016x} within {timeout}s")
            if waiter.error is not None:
                raise SwitchError(f"switch error: {waiter.error}")
            return waiter
        finally:
            self._waiters.pop(xid, None)

    def on_reply(self, msg: Any, final: bool = True) -> None:
        waiter = self._waiters.get(msg.xid)
        if waiter is None:
            return
        waiter.replies.append(msg)
        if final:
            waiter.done.set()

    def on_error(self, msg: Any) -> None:
        self.errors += 1
        waiter = self._waiters.get(msg.xid)
        description = f"type={msg.type} code={msg.code}"
        log.error("OpenFlow error from %016x xid=%s %s", self.dpid, msg.xid, description)
        if waiter is not None:
            waiter.error = description
            waiter.done.set()
        elif (bundle := self._bundle) is not None:
            first, count, errors = bundle
            index = (msg.xid - first) & self.ofp.MAX_XID
            if index < count:
                errors.append((index, description))

    # -------------------------------------------------------- requests
    def barrier(self, timeout: float = 30.0) -> None:
        self._wait(self._send(self.parser.OFPBarrierRequest(self.datapath)), timeout)

    def dump_flows(self, timeout: float = 60.0) -> list[FlowKey]:
        """(length, table_id, cookie) of every installed flow (one OFPMP_FLOW request
        for all tables; entries read by FlowKeyParser, not os-ken's OFPFlowStats)."""
        request = self.parser.OFPFlowStatsRequest(self.datapath, 0, self.ofp.OFPTT_ALL,
                                                  self.ofp.OFPP_ANY, self.ofp.OFPG_ANY,
                                                  0, 0, self.parser.OFPMatch())
        waiter = self._wait(self._send(request), timeout)
        return [stat for reply in waiter.replies for stat in reply.body]

    def dump_meters(self, timeout: float = 30.0) -> list[Any]:
        """Every meter's configuration (OFPMeterConfigStats: meter_id, flags, bands), by
        a meter config multipart request for OFPM_ALL (OpenFlow 1.3 section 7.3.5.13)."""
        request = self.parser.OFPMeterConfigStatsRequest(self.datapath, 0, self.ofp.OFPM_ALL)
        waiter = self._wait(self._send(request), timeout)
        return [stat for reply in waiter.replies for stat in reply.body]

    def send_checked(self, messages: list[Any], timeout: float = 30.0) -> None:
        """Send messages that have no reply of their own (e.g. meter mods, which ONF
        bundles do not carry), then a barrier; raise SwitchError if the switch rejected
        any of them (its errors precede the barrier reply, spec section 6.2)."""
        if not messages:
            return
        xids = [self._send(message) for message in messages]
        try:
            self.barrier(timeout)
        finally:
            errors = [self._waiters[x].error for x in xids
                      if x in self._waiters and self._waiters[x].error]
            for xid in xids:
                self._waiters.pop(xid, None)
        if errors:
            raise SwitchError(f"{len(errors)} of {len(messages)} rejected: {errors[0]}")

    def packet_out(self, port: int, data: bytes) -> None:
        ofp, parser = self.ofp, self.parser
        self._send(parser.OFPPacketOut(self.datapath, buffer_id=ofp.OFP_NO_BUFFER,
                                       in_port=ofp.OFPP_CONTROLLER,
                                       actions=[parser.OFPActionOutput(port)], data=data),
                   expect_reply=False)

    def send_bundle(self, messages: Iterable[bytes], count: int | None = None,
                    timeout: float = 120.0) -> None:
        """Apply encoded flow_mods (vna.ofwire bytes; their xid is overwritten)
        atomically and in order, as one ONF bundle (OF1.3 extension 230): open, one
        bundle-add per message, commit, written through os-ken's Datapath.send in pieces
        of `bundle_chunk` bytes (vna.ofwire.bundle_chunks): the whole bundle is never
        one buffer (7 MiB at 41k flows).  Returns once the switch answers the commit.
        With `count` (the number of messages), `messages` may be a generator, consumed
        while the pieces are sent; a count that does not match raises ValueError, and
        the bundle already opened on the switch is discarded.

        An error on any message aborts the whole bundle, so the switch is never left
        half-way between two consistent flow tables; it is raised as SwitchError naming
        the failing message's index.
        """
        if count is None:
            messages = list(messages)
            count = len(messages)
        if not count:
            return
        n_messages = count
        dp = self.datapath
        bundle_id = next(self._bundle_ids) & 0xFFFFFFFF
        count = n_messages + 2  # open, adds, commit
        max_xid = self.ofp.MAX_XID
        opened, committed = _Waiter(), _Waiter()
        errors: list[tuple[int, str]] = []
        with self._lock:  # the xid range, as Datapath.set_xid would hand it out
            first = (dp.xid + 1) & max_xid
            dp.xid = (dp.xid + count) & max_xid
            commit = (first + count - 1) & max_xid
            self._waiters[first] = opened
            self._waiters[commit] = committed
            self._bundle = (first, count, errors)
        try:
            pieces = ofwire.bundle_chunks(bundle_id, messages, n_messages, first,
                                          max_xid=max_xid, chunk_size=self.bundle_chunk)
            sent = False
            try:
                for piece in pieces:
                    if not dp.send(piece):
                        raise SwitchError("switch connection closed")
                    sent = True
            except ValueError as exc:
                if sent:  # the switch holds an open bundle: drop it (its xid: commit's)
                    dp.send(ofwire.bundle_ctrl(bundle_id, ofwire.ONF_BCT_DISCARD_REQUEST,
                                               commit))
                raise ValueError(f"send_bundle: {exc}") from None
            del piece
            if not committed.done.wait(timeout):
                raise SwitchError(f"no commit reply from switch {self.dpid:016x} "
                                  f"within {timeout}s")
        finally:
            self._waiters.pop(first, None)
            self._waiters.pop(commit, None)
            self._bundle = None
        if opened.error is not None:
            errors.insert(0, (0, opened.error))
        if errors:
            index, description = errors[0]
            what = f"message {index - 1} of {n_messages}" if 0 < index < count - 1 \
                else ("open" if index == 0 else "commit")
            raise SwitchError(f"bundle rejected at {what}: {description}"
                              + (f" (commit: {committed.error})" if committed.error else ""))
        if committed.error is not None:
            raise SwitchError(f"bundle rejected at commit: {committed.error}")


def async_config(datapath: Any) -> Any:
    """OFPT_SET_ASYNC (OpenFlow 1.3 section 7.3.10): packet-ins for the controller action
    and for invalid TTL (a ROUTE entry's dec_ttl on TTL <= 1: vna.features.routing answers
    ICMP time exceeded; OVS sends none unless asked), never for no_match (every table has
    an explicit miss flow); every port-status and flow-removed reason, as by default."""
    o, p = datapath.ofproto, datapath.ofproto_parser
    packet_in = 1 << o.OFPR_ACTION | 1 << o.OFPR_INVALID_TTL
    port_status = 1 << o.OFPPR_ADD | 1 << o.OFPPR_DELETE | 1 << o.OFPPR_MODIFY
    flow_removed = (1 << o.OFPRR_IDLE_TIMEOUT | 1 << o.OFPRR_HARD_TIMEOUT
                    | 1 << o.OFPRR_DELETE | 1 << o.OFPRR_GROUP_DELETE)
    return p.OFPSetAsync(datapath, [packet_in, 0], [port_status, 0], [flow_removed, 0])


def _report_lost_connections(datapath_class: Any) -> None:
    """Make os-ken report a switch whose connection ended (EventOFPStateChange DEAD).

    With os-ken's default native-thread hub, `Datapath.serve` ends a connection by
    killing its send and echo threads, which that hub cannot do (its kill is a no-op),
    then joining them: the send thread waits on its queue forever, so `close()` - which
    emits the DEAD state change - is never reached, and a killed ovs-vswitchd went
    unnoticed (the datapath stayed is_connected).  Here the receive loop's end marks the
    datapath dead at once and wakes the send thread with a closing no-op write (it fails
    on the closed socket and ends); the echo thread ends at its next tick."""
    receive = datapath_class._recv_loop

    def recv_loop(self: Any) -> None:
        try:
            receive(self)
        finally:
            self.set_state(DEAD_DISPATCHER)  # idempotent: close() later sees no change
            self.send(b"", close_socket=True)

    datapath_class._recv_loop = recv_loop


_report_lost_connections(os_ken_controller.Datapath)


class VnaOpenFlowApp(app_manager.OSKenApp):
    """Hands switch connections to the agent; every decision is the agent's."""

    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]
    listener: SwitchListener | None = None  # set before the app manager starts
    # One app per vna process: class-level so metrics can read it without the instance.
    packet_ins: Counter[str] = Counter()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connections: dict[int, SwitchConnection] = {}

    def _connection(self, msg: Any) -> SwitchConnection | None:
        return self.connections.get(msg.datapath.id)

    @set_ev_cls(ofp_event.EventOFPStateChange, [MAIN_DISPATCHER, DEAD_DISPATCHER])
    def _state_change(self, ev: Any) -> None:
        datapath = ev.datapath
        if ev.state == MAIN_DISPATCHER and datapath.id is not None:
            connection = SwitchConnection(datapath)
            self.connections[datapath.id] = connection
            datapath.send_msg(async_config(datapath))
            log.info("switch %016x connected from %s", datapath.id, datapath.address)
            if self.listener:
                self.listener.switch_connected(connection)
        elif ev.state == DEAD_DISPATCHER and datapath.id in self.connections:
            connection = self.connections.pop(datapath.id)
            connection.alive = False
            log.warning("switch %016x disconnected", datapath.id)
            if self.listener:
                self.listener.switch_disconnected(connection)

    @set_ev_cls(ofp_event.EventOFPBarrierReply, BOTH)
    def _barrier_reply(self, ev: Any) -> None:
        if (connection := self._connection(ev.msg)) is not None:
            connection.on_reply(ev.msg)

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply, BOTH)
    def _flow_stats_reply(self, ev: Any) -> None:
        if (connection := self._connection(ev.msg)) is not None:
            more = ev.msg.flags & ev.msg.datapath.ofproto.OFPMPF_REPLY_MORE
            connection.on_reply(ev.msg, final=not more)

    @set_ev_cls(ofp_event.EventOFPMeterConfigStatsReply, BOTH)
    def _meter_config_reply(self, ev: Any) -> None:
        if (connection := self._connection(ev.msg)) is not None:
            more = ev.msg.flags & ev.msg.datapath.ofproto.OFPMPF_REPLY_MORE
            connection.on_reply(ev.msg, final=not more)

    @set_ev_cls(ofp_event.EventONFBundleCtrlMsg, BOTH)
    def _bundle_reply(self, ev: Any) -> None:
        if (connection := self._connection(ev.msg)) is not None:
            connection.on_reply(ev.msg)

    @set_ev_cls(ofp_event.EventOFPErrorMsg, BOTH)
    def _error(self, ev: Any) -> None:
        if (connection := self._connection(ev.msg)) is not None:
            connection.on_error(ev.msg)

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def _packet_in(self, ev: Any) -> None:
        # Only flows of features that answer packets punt them, through the port's meter;
        # count every packet-in (a steady state with no such traffic has none).
        msg = ev.msg
        reason = PACKET_IN_REASONS.get(msg.reason, str(msg.reason))
        self.packet_ins[reason] += 1
        connection = self._connection(msg)
        if connection is None or self.listener is None:
            return
        packet_in = PacketIn(cookie=msg.cookie, table_id=msg.table_id, reason=reason,
                             in_port=msg.match.get("in_port", 0), data=bytes(msg.data))
        # Handled on the agent's worker thread, never on os-ken's event thread.
        self.listener.packet_in(connection, packet_in)
