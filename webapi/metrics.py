"""webapi's Prometheus metrics: one registry per process (per Backend).

Requests are counted and timed by route endpoint name (e.g. `interfaces_show`), never by
raw path, so the series stay bounded; unmatched paths count as endpoint `unmatched`.
Status is the class (`2xx`, `4xx`, ...).  Under a server with several worker processes
each process keeps its own counts: a scrape reads the one worker that answered it
(docs/api.md, "Metrics").
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Histogram

from vnet.metrics import LATENCY_BUCKETS, CollectorRegistry

LABELS = ("endpoint", "method", "status")
# The classes every known route starts at 0 for; others (1xx, 3xx) appear when seen.
STATUS_CLASSES = ("2xx", "4xx", "5xx")
UNMATCHED = "unmatched"


class RequestMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("vnet_webapi_requests_total",
                                "HTTP requests answered, by route endpoint, method and "
                                "status class", LABELS, registry=self.registry)
        self.latency = Histogram("vnet_webapi_request_seconds",
                                 "Seconds from a request's arrival to its response, by "
                                 "route endpoint, method and status class", LABELS,
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.vnmgr_failures = Counter("vnet_webapi_vnmgr_failures_total",
                                      "vnmgr requests that failed with a 5xx (vnmgr away, "
                                      "database unavailable, internal error)",
                                      registry=self.registry)

    def declare(self, routes: Iterable[tuple[str, str]]) -> None:
        """Start the counters of every (endpoint, method) at 0 for each status class."""
        for endpoint, method in routes:
            for status in STATUS_CLASSES:
                self.requests.labels(endpoint, method, status)

    def observe(self, endpoint: str | None, method: str, status: int, seconds: float) -> None:
        """One answered request; `endpoint` None when no route matched."""
        labels = (endpoint or UNMATCHED, method, f"{status // 100}xx")
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)

    def vnmgr_failed(self) -> None:
        self.vnmgr_failures.inc()
