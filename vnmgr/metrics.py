"""vnmgr's Prometheus metrics: its own registry, counters read from the service at scrape
time, and the service's request latency histogram (Vnmgr.request_latency)."""

from __future__ import annotations

from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIServer

from vnet.metrics import CollectorRegistry, Scrape, ScrapeCollector, serve

if TYPE_CHECKING:
    from vnmgr.service import Vnmgr

# service.counters key -> (metric, help)
COUNTERS = {
    "requests": ("vnet_vnmgr_requests_total", "Requests received"),
    "writes": ("vnet_vnmgr_writes_total", "Committed writes that changed the model"),
    "events_published": ("vnet_vnmgr_events_published_total", "Events published on `global`"),
    "errors": ("vnet_vnmgr_internal_errors_total", "Requests that failed with an internal "
               "error"),
    # docs/messaging.md, "Keys and roles"
    "refused": ("vnet_vnmgr_refused_total", "Requests a client key's role does not allow"),
    "slice_messages": ("vnet_vnmgr_slice_messages_total", "Messages sent on nodes' topics"),
    "liveness_updates": ("vnet_vnmgr_liveness_updates_total", "Datapaths whose is_connected "
                         "vnmgr changed from its agents' reports"),
}


def registry(service: Vnmgr) -> CollectorRegistry:
    """A new registry with vnmgr's metrics (serve it with vnet.metrics.serve)."""
    reg = CollectorRegistry()
    reg.register(ScrapeCollector(lambda scrape: collect(scrape, service)))
    reg.register(service.request_latency)
    return reg


def collect(s: Scrape, service: Vnmgr) -> None:
    # Read from the serving thread without a lock: each value is one attribute read, and a
    # scrape a request behind is as good as any.
    for key, (name, doc) in COUNTERS.items():
        s.counter(name, doc, service.counters[key])
    s.gauge("vnet_vnmgr_sequence", "The last event's sequence number", service._seq or 0)
    s.counter("vnet_vnmgr_events_pruned_total", "Rows pruned from the events table "
              "([vnmgr] events_keep)", service.events.pruned)
    s.gauge("vnet_vnmgr_datapaths_live", "Datapaths whose agent reported them connected "
            "within [vnmgr] agent_timeout", len(service.liveness.live()))
    s.declare("gauge", "vnet_vnmgr_agent_seq", "The sequence number an agent last reported",
              ["node_id"])
    for node, status in list(service.agents.items()):
        s.gauge("vnet_vnmgr_agent_seq", "", float(status.get("seq", 0)), node_id=node)
    subscriptions = service.subscriptions
    s.counter("vnet_vnmgr_slices_recomputed_total", "Slices recomputed in full",
              subscriptions.recomputed if subscriptions is not None else 0)
    s.counter("vnet_vnmgr_slices_updated_total", "Slices updated incrementally",
              subscriptions.incremental if subscriptions is not None else 0)
    s.declare("gauge", "vnet_vnmgr_slice_rows", "Rows in a node's slice", ["node_id"])
    if subscriptions is not None:
        for node in list(subscriptions.nodes.values()):
            s.gauge("vnet_vnmgr_slice_rows", "", len(node.keys) + len(subscriptions.shared),
                    node_id=node.node_id)


def start_metrics_server(service: Vnmgr, host: str, port: str) -> WSGIServer | None:
    """None when `port` is empty or taken (logged): metrics must not stop vnmgr."""
    return serve(host, port, registry(service))
