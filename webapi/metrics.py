"""Request counters for GET /metrics (Prometheus text via vnet.metrics.render)."""

from __future__ import annotations

import threading
from collections import Counter

from vnet.metrics import Sample


class RequestMetrics:
    def __init__(self) -> None:
        # The WSGI server is threaded: every update happens under this lock.
        self._lock = threading.Lock()
        self._requests: Counter[tuple[str, str]] = Counter()
        self._latency_sum = 0.0
        self._latency_count = 0
        self._vnmgr_failures = 0

    def observe(self, method: str, status: int, seconds: float) -> None:
        with self._lock:
            self._requests[(method, str(status))] += 1
            self._latency_sum += seconds
            self._latency_count += 1

    def vnmgr_failed(self) -> None:
        with self._lock:
            self._vnmgr_failures += 1

    def samples(self) -> list[Sample]:
        with self._lock:
            samples: list[Sample] = [
                ("vnet_webapi_requests_total", {"method": method, "status": status}, float(n))
                for (method, status), n in sorted(self._requests.items())
            ]
            samples += [
                ("vnet_webapi_request_seconds_sum", {}, self._latency_sum),
                ("vnet_webapi_request_seconds_count", {}, float(self._latency_count)),
                ("vnet_webapi_vnmgr_failures_total", {}, float(self._vnmgr_failures)),
            ]
        return samples
