"""vnmgr's Prometheus counters."""

from __future__ import annotations

from collections.abc import Iterable
from http.server import ThreadingHTTPServer
from typing import TYPE_CHECKING

from vnet.metrics import Sample, serve

if TYPE_CHECKING:
    from vnmgr.service import Vnmgr


def collect(service: Vnmgr) -> Iterable[Sample]:
    yield "vnet_vnmgr_requests_total", {}, service.counters["requests"]
    yield "vnet_vnmgr_writes_total", {}, service.counters["writes"]
    yield "vnet_vnmgr_events_published_total", {}, service.counters["events_published"]
    yield "vnet_vnmgr_internal_errors_total", {}, service.counters["errors"]
    # Requests a client's key role does not allow (docs/messaging.md, "Keys and roles").
    yield "vnet_vnmgr_refused_total", {}, service.counters["refused"]
    yield "vnet_vnmgr_sequence", {}, service._seq or 0
    yield "vnet_vnmgr_slice_messages_total", {}, service.counters["slice_messages"]
    for node, status in service.agents.items():
        yield "vnet_vnmgr_agent_seq", {"node_id": node}, float(status.get("seq", 0))
    subscriptions = service.subscriptions
    if subscriptions is not None:
        yield "vnet_vnmgr_slices_recomputed_total", {}, subscriptions.recomputed
        yield "vnet_vnmgr_slices_updated_total", {}, subscriptions.incremental
        for node in list(subscriptions.nodes.values()):
            yield ("vnet_vnmgr_slice_rows", {"node_id": node.node_id},
                   len(node.keys) + len(subscriptions.shared))


def start_metrics_server(service: Vnmgr, host: str, port: str) -> ThreadingHTTPServer | None:
    try:
        return serve(host, port, lambda: collect(service))
    except OSError:
        # Metrics are optional; a taken port must not stop the model manager.
        import logging
        logging.getLogger("vnmgr").warning("metrics port %s:%s unavailable", host, port)
        return None
