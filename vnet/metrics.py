"""Prometheus metrics for the services, on `prometheus_client`.

Each service builds its own `CollectorRegistry` (never the library's global one), so a
test can run several services in one process.  Values kept elsewhere (a service's
counters, the size of its model) are read at scrape time by a `ScrapeCollector`; request
latencies are `prometheus_client` histograms owned by the service.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    disable_created_metrics,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE_LATEST", "CollectorRegistry", "Scrape", "ScrapeCollector",
           "exposition", "serve", "LATENCY_BUCKETS"]

log = logging.getLogger("vnet.metrics")

# The `<name>_created` series prometheus_client adds to every counter and histogram double
# the output and nobody here reads them (a restart shows as a counter reset anyway).
disable_created_metrics()

# Seconds: from a loopback request (well under 1 ms) to a convergence at 100,000 rows.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0, 10.0, 30.0)


class Scrape:
    """The metric families of one scrape, built from values read now.

    `counter`/`gauge` add one sample; label names are sorted, so a sample prints as
    `name{a="..",b=".."}` whatever order the caller gives.  `declare` makes a family
    appear (HELP and TYPE lines) even before it has a sample.
    """

    def __init__(self) -> None:
        self._families: dict[str, Metric] = {}

    def counter(self, name: str, doc: str, value: float, **labels: str) -> None:
        """A counter sample; `name` ends in `_total`."""
        self._family(CounterMetricFamily, name, doc, labels).add_metric(
            [labels[k] for k in sorted(labels)], value)

    def gauge(self, name: str, doc: str, value: float, **labels: str) -> None:
        self._family(GaugeMetricFamily, name, doc, labels).add_metric(
            [labels[k] for k in sorted(labels)], value)

    def declare(self, kind: str, name: str, doc: str, labelnames: Iterable[str]) -> None:
        """kind: "counter" or "gauge"."""
        cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
        self._family(cls, name, doc, dict.fromkeys(labelnames, ""))

    def families(self) -> list[Metric]:
        return list(self._families.values())

    def _family(self, cls: type, name: str, doc: str, labels: Mapping[str, str]) -> Metric:
        family = self._families.get(name)
        if family is None:
            family = self._families[name] = cls(name, doc, labels=sorted(labels))
        return family


class ScrapeCollector(Collector):
    """A collector whose families `read(scrape)` fills at each scrape."""

    def __init__(self, read: Callable[[Scrape], None]) -> None:
        self.read = read

    def collect(self) -> Iterable[Metric]:
        scrape = Scrape()
        self.read(scrape)
        return scrape.families()


def exposition(registry: CollectorRegistry) -> bytes:
    """The registry in the Prometheus text format (CONTENT_TYPE_LATEST)."""
    return generate_latest(registry)


def serve(host: str, port: str | int | None, registry: CollectorRegistry
          ) -> WSGIServer | None:
    """Serve `registry` on http://host:port/metrics in a daemon thread; None when `port`
    is empty (metrics disabled) or taken (metrics are optional: a taken port must not stop
    the service; it is logged)."""
    if port in ("", None):
        return None
    try:
        server, _thread = start_http_server(int(port), addr=host, registry=registry)
    except OSError as exc:
        log.warning("metrics port %s:%s unavailable (%s)", host, port, exc)
        return None
    return server
