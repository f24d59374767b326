"""The vna's Prometheus metrics: its own registry, read from the agent at scrape time,
plus the agent's convergence histogram (Agent.convergence).

Every sample carries `node_id`.  Labelled counters start at 0 for every label value known
in advance (packet-in reasons, features, drop causes, DNS results, ICMP error types).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from vna import icmp_errors
from vna.features import FEATURES, dns
from vna.pipeline import Table
from vna.switch import PACKET_IN_REASONS
from vnet.metrics import CollectorRegistry, Scrape, ScrapeCollector

if TYPE_CHECKING:
    from vna.agent import Agent
    from vna.vnmgr_link import VnmgrLink

# punt.PuntStats' causes plus the agent's own (see its docstring).
DROP_CAUSES = ("unknown_kind", "no_handler", "handler_error", "no_view", "send_failed",
               "backlog")
DNS_RESULTS = ("answered", "failed", "busy")


def registry(agent: Agent, link: VnmgrLink, packet_ins: Counter[str]) -> CollectorRegistry:
    """A new registry with the vna's metrics (serve it with vnet.metrics.serve)."""
    reg = CollectorRegistry()
    reg.register(ScrapeCollector(lambda scrape: collect(scrape, agent, link, packet_ins)))
    reg.register(agent.convergence)
    return reg


def collect(s: Scrape, agent: Agent, link: VnmgrLink, packet_ins: Counter[str]) -> None:
    node = agent.node_id
    s.gauge("vnet_vna_datapath_connected", "1 when the bridge is connected to this vna",
            1.0 if agent.connection else 0.0, node_id=node)
    s.counter("vnet_vna_events_received_total", "Messages received on this node's topic",
              link.events_received, node_id=node)
    s.counter("vnet_vna_events_applied_total", "Change messages applied to the model",
              agent.stats.events_applied, node_id=node)
    s.counter("vnet_vna_resyncs_total", "Snapshots taken of this node's slice",
              link.resyncs, node_id=node)
    s.gauge("vnet_vna_applied_seq", "Sequence number of the last message applied",
            agent.stats.applied_seq, node_id=node)
    s.counter("vnet_vna_full_syncs_total", "Full diffs of the switch's flow tables",
              agent.stats.full_syncs, node_id=node)
    s.counter("vnet_vna_sync_failures_total", "Syncs the switch rejected or missed",
              agent.stats.sync_failures, node_id=node)
    s.gauge("vnet_vna_sync_duration_seconds", "Duration of the last flow sync",
            agent.stats.last_sync_seconds, node_id=node)
    s.counter("vnet_vna_flow_mods_sent_total", "flow_mod messages sent to the switch",
              agent.syncer.flow_mods_sent, node_id=node)
    per_table: Counter[int] = Counter(flow.table for flow in agent.desired.flows().values())
    for table in Table:
        s.gauge("vnet_vna_flows", "Desired flows, by table", per_table.get(table, 0),
                node_id=node, table=table.name.lower())
    for reason in sorted({*PACKET_IN_REASONS.values(), *packet_ins}):
        s.counter("vnet_vna_packet_ins_total", "Packet-ins from the switch, by reason",
                  packet_ins.get(reason, 0), node_id=node, reason=reason)
    # The packet-in path (vna.punt): answered per feature, dropped per cause.
    punts = agent.punt_stats
    for feature in sorted({*(f.name for f in FEATURES), *punts.handled}):
        s.counter("vnet_vna_punts_handled_total", "Packet-ins answered, by feature",
                  punts.handled.get(feature, 0), feature=feature, node_id=node)
    dropped = punts.dropped + Counter(backlog=agent.packet_ins_backlogged)
    for cause in sorted({*DROP_CAUSES, *dropped}):
        s.counter("vnet_vna_punts_dropped_total", "Packet-ins dropped, by cause",
                  dropped.get(cause, 0), cause=cause, node_id=node)
    s.counter("vnet_vna_punt_replies_total", "Deferred packet-outs sent", punts.sent,
              node_id=node)
    # DNS queries sent to upstream resolvers (vna.dns_forward), by outcome.
    forwarder = dns.FORWARDER
    for result, count in zip(DNS_RESULTS, (forwarder.answered, forwarder.failed,
                                           forwarder.refused), strict=True):
        s.counter("vnet_vna_dns_forwarded_total", "DNS queries forwarded upstream, by result",
                  count, node_id=node, result=result)
    # ICMP errors from the distributed router (vna.icmp_errors): sent per type, and those
    # the per-port token bucket held back.
    for name in icmp_errors.TYPE_NAMES.values():
        s.counter("vnet_vna_icmp_errors_sent_total", "ICMP errors sent, by type",
                  icmp_errors.STATS.sent.get(name, 0), node_id=node, type=name)
    s.counter("vnet_vna_icmp_errors_rate_limited_total",
              "ICMP errors held back by the per-port rate limit", icmp_errors.STATS.limited,
              node_id=node)
    s.counter("vnet_vna_meter_mods_sent_total", "meter_mod messages sent to the switch",
              agent.meters.meter_mods_sent, node_id=node)
    s.counter("vnet_vna_meter_failures_total", "meter_mods the switch rejected",
              agent.meters.failures, node_id=node)
