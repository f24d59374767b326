"""The vna's Prometheus samples."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING

from vna import icmp_errors
from vna.features import dns
from vna.pipeline import Table
from vnet.metrics import Sample

if TYPE_CHECKING:
    from vna.agent import Agent
    from vna.vnmgr_link import VnmgrLink


def collect(agent: Agent, link: VnmgrLink, packet_ins: Counter[str]) -> Iterable[Sample]:
    node = {"node_id": agent.node_id}
    yield "vnet_vna_datapath_connected", node, 1.0 if agent.connection else 0.0
    yield "vnet_vna_events_received_total", node, link.events_received
    yield "vnet_vna_events_applied_total", node, agent.stats.events_applied
    yield "vnet_vna_resyncs_total", node, link.resyncs
    yield "vnet_vna_applied_seq", node, agent.stats.applied_seq
    yield "vnet_vna_full_syncs_total", node, agent.stats.full_syncs
    yield "vnet_vna_sync_failures_total", node, agent.stats.sync_failures
    yield "vnet_vna_sync_duration_seconds", node, agent.stats.last_sync_seconds
    yield "vnet_vna_flow_mods_sent_total", node, agent.syncer.flow_mods_sent
    per_table: Counter[int] = Counter(flow.table for flow in agent.desired.flows().values())
    for table in Table:
        yield "vnet_vna_flows", {**node, "table": table.name.lower()}, per_table.get(table, 0)
    for reason, count in packet_ins.items():
        yield "vnet_vna_packet_ins_total", {**node, "reason": reason}, count
    # The packet-in path (vna.punt): answered per feature, dropped per cause.
    punts = agent.punt_stats
    for feature, count in punts.handled.items():
        yield "vnet_vna_punts_handled_total", {**node, "feature": feature}, count
    dropped = punts.dropped + Counter(backlog=agent.packet_ins_backlogged)
    for cause, count in dropped.items():
        yield "vnet_vna_punts_dropped_total", {**node, "cause": cause}, count
    yield "vnet_vna_punt_replies_total", node, punts.sent
    # DNS queries sent to upstream resolvers (vna.dns_forward), by outcome.
    forwarder = dns.FORWARDER
    for result, count in (("answered", forwarder.answered), ("failed", forwarder.failed),
                          ("busy", forwarder.refused)):
        yield "vnet_vna_dns_forwarded_total", {**node, "result": result}, count
    # ICMP errors from the distributed router (vna.icmp_errors): sent per type, and those
    # the per-port token bucket held back.
    for name in icmp_errors.TYPE_NAMES.values():
        sent = icmp_errors.STATS.sent.get(name, 0)
        yield "vnet_vna_icmp_errors_sent_total", {**node, "type": name}, sent
    yield "vnet_vna_icmp_errors_rate_limited_total", node, icmp_errors.STATS.limited
    yield "vnet_vna_meter_mods_sent_total", node, agent.meters.meter_mods_sent
    yield "vnet_vna_meter_failures_total", node, agent.meters.failures
