"""webapi throughput: interface creates/s and paginated list cost, on SQLite and MariaDB.

Per backend, one lab with vnmgr and webapi as real processes (no hypervisor: nothing
here touches a switch). N vif interfaces, each with a MAC and an IP lease on one /16
network and owned by one model-only datapath, are created through
`POST /api/1.0/interfaces` by a few concurrent HTTP clients (keep-alive connections).
Then `GET /api/1.0/interfaces?limit=L&offset=O` is timed by one client for each page
size L at an offset near 0 and one near the end (0.9 N). See docs/performance.md.
"""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import json
import statistics
import sys
import threading
import time
import urllib.parse
from typing import Any

from bench.common import log, percentile, table
from lab import Lab
from lab.mysql import create_mysql_database
from lab.services import Services

BACKENDS = ("sqlite", "mariadb")
CLIENTS = 4
LIMITS = (10, 100, 1000)
REPEATS = {10: 30, 100: 20, 1000: 10}
NETWORK = ipaddress.IPv4Network("10.128.0.0/16")


class Client:
    """One keep-alive HTTP connection to the webapi."""

    def __init__(self, base_url: str) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> Any:
        body = urllib.parse.urlencode(form).encode() if form else None
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
        for attempt in (1, 2):
            try:
                self.conn.request(method, f"/api/1.0/{path}", body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # An idle keep-alive connection closed by the server: the request never
                # reached it, so sending it again is safe.
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
                if attempt == 2:
                    raise
        if response.status >= 300:
            raise RuntimeError(f"{method} {path} -> {response.status}: {data[:300]!r}")
        return json.loads(data or b"null")

    def close(self) -> None:
        self.conn.close()


def interface_form(i: int) -> dict[str, str]:
    return {"uuid": f"if-b{i:06d}", "mode": "vif", "owner_datapath_uuid": "dp-bench",
            "mac_address": f"12:00:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}",
            "network_uuid": "nw-bench", "ipv4_address": str(NETWORK.network_address + 10 + i)}


def create_interfaces(base_url: str, n: int, clients: int) -> dict[str, Any]:
    """POST n interfaces with `clients` threads; each thread takes every clients-th one."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []

    def work(k: int) -> None:
        client = Client(base_url)
        try:
            for i in range(k, n, clients):
                t0 = time.monotonic()
                client.request("POST", "interfaces", interface_form(i))
                latencies[k].append(time.monotonic() - t0)
                if k == 0 and i % 2000 == 0 and i:
                    log(f"  {i}/{n} created")
        except BaseException as exc:  # reported by the caller
            errors.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=work, args=(k,)) for k in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.monotonic() - started
    if errors:
        raise errors[0]
    ms = [x * 1000 for per in latencies for x in per]
    return {"interfaces": n, "clients": clients, "seconds": seconds, "creates_per_s": n / seconds,
            "p50_ms": percentile(ms, 50), "p99_ms": percentile(ms, 99), "max_ms": max(ms)}


def time_lists(base_url: str, n: int) -> list[dict[str, Any]]:
    client = Client(base_url)
    out = []
    try:
        for limit in LIMITS:
            for offset in (0, int(n * 0.9)):
                path = f"interfaces?limit={limit}&offset={offset}"
                page = client.request("GET", path)  # warm-up, and the row count
                rows, total = len(page["items"]), page["total_count"]
                times = []
                for _ in range(REPEATS[limit]):
                    t0 = time.monotonic()
                    client.request("GET", path)
                    times.append((time.monotonic() - t0) * 1000)
                median = statistics.median(times)
                out.append({"limit": limit, "offset": offset, "rows": rows, "total_count": total,
                            "repeats": len(times), "median_ms": median,
                            "p90_ms": percentile(times, 90),
                            "us_per_row": median * 1000 / max(rows, 1)})
    finally:
        client.close()
    return out


def run_backend(backend: str, n: int, clients: int) -> dict[str, Any]:
    with Lab() as lab:
        url = None
        if backend == "mariadb":
            url = create_mysql_database(lab)
        services = Services(lab, url)
        services.start_vnmgr()
        services.start_webapi()
        base = services.webapi_url
        setup = Client(base)
        setup.request("POST", "networks", {"uuid": "nw-bench", "network_mode": "virtual",
                                           "ipv4_network": str(NETWORK.network_address),
                                           "ipv4_prefix": str(NETWORK.prefixlen)})
        setup.request("POST", "datapaths", {"uuid": "dp-bench", "dpid": "0x0000be4c0000aaaa",
                                            "node_id": "vnabench"})
        setup.close()
        log(f"api {backend}: creating {n} interfaces with {clients} clients ({lab.prefix})")
        create = create_interfaces(base, n, clients)
        log(f"api {backend}: {create['creates_per_s']:.0f} creates/s, "
            f"p50 {create['p50_ms']:.1f} ms, p99 {create['p99_ms']:.1f} ms")
        lists = time_lists(base, n)
        for row in lists:
            log(f"api {backend}: limit={row['limit']} offset={row['offset']}: "
                f"{row['median_ms']:.1f} ms ({row['us_per_row']:.0f} us/row)")
        return {"backend": backend, "create": create, "list": lists}


def run(quick: bool, n: int | None = None, clients: int = CLIENTS,
        backends: tuple[str, ...] = BACKENDS) -> dict[str, Any]:
    n = n or (1000 if quick else 10000)
    return {"interfaces": n, "clients": clients,
            "backends": [run_backend(backend, n, clients) for backend in backends]}


def report(res: dict[str, Any]) -> str:
    out = [table(f"4a. webapi creates: {res['interfaces']:,} interfaces, "
                 f"{res['clients']} concurrent clients",
                 ["backend", "seconds", "creates/s", "p50 ms", "p99 ms", "max ms"],
                 [[b["backend"], b["create"]["seconds"], b["create"]["creates_per_s"],
                   b["create"]["p50_ms"], b["create"]["p99_ms"], b["create"]["max_ms"]]
                  for b in res["backends"]])]
    rows = [[b["backend"], r["limit"], r["offset"], r["rows"], r["median_ms"], r["p90_ms"],
             r["us_per_row"]] for b in res["backends"] for r in b["list"]]
    out.append(table(f"4b. GET /api/1.0/interfaces?limit=L&offset=O with "
                     f"{res['interfaces']:,} interfaces (one client, median of 10-30)",
                     ["backend", "limit", "offset", "rows", "median ms", "p90 ms", "us/row"],
                     rows))
    for b in res["backends"]:
        by = {(r["limit"], r["offset"] > 0): r for r in b["list"]}
        far = [f"L={lim} x{by[lim, True]['us_per_row'] / by[lim, False]['us_per_row']:.2f}"
               for lim in LIMITS]
        per_row = by[LIMITS[-1], False]["us_per_row"] / by[LIMITS[0], False]["us_per_row"]
        out.append(f"{b['backend']}: cost per row at the far offset vs offset 0: "
                   f"{', '.join(far)}; per row at L={LIMITS[-1]} vs L={LIMITS[0]}: "
                   f"x{per_row:.2f} (1.00 = flat).\n")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.api_throughput",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 interfaces")
    parser.add_argument("--n", type=int, help="interfaces (default 10,000)")
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    args = parser.parse_args(argv)
    res = run(args.quick, args.n, args.clients, tuple(args.backends.split(",")))
    print(report(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
