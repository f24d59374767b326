"""What an e2e test reads from a lab host's vna and switch: metrics, meters, and whether
the agents caught up with vnmgr."""

from __future__ import annotations

import re
import time

from lab.cloud import Cloud


def vna_metrics_text(c: Cloud, host: str) -> str:
    """The host's vna /metrics, as served (Prometheus text)."""
    return c.hosts[host].hv.netns.run("python3", "-c", "import urllib.request as u;print("
                                      "u.urlopen('http://127.0.0.1:9105/metrics').read()"
                                      ".decode())").stdout


def vna_metrics(c: Cloud, host: str) -> dict[str, float]:
    """The host's vna metrics, sample (name with labels) -> value."""
    text = vna_metrics_text(c, host)
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines() if line and not line.startswith("#")}


def meters(c: Cloud, host: str) -> dict[int, tuple[int, int]]:
    """meter id -> (pktps rate, burst) of the drop band, from ovs-ofctl dump-meters."""
    text = c.hosts[host].hv.ovs.ofctl("dump-meters", "br-int")
    found = re.findall(r"meter=(\d+) pktps burst stats bands=\s*type=drop rate=(\d+) "
                       r"burst_size=(\d+)", text)
    assert len(found) == text.count("meter="), text
    return {int(i): (int(rate), int(burst)) for i, rate, burst in found}


def agents_caught_up(c: Cloud, timeout: float = 15.0) -> None:
    """Wait until every host's vna reports the model sequence number vnmgr is at."""
    rpc = c.services.rpc()
    deadline = time.monotonic() + timeout
    while True:
        report = rpc.call("agents")
        agents = report["agents"]
        if len(agents) == len(c.hosts) and all(a["seq"] == report["seq"]
                                                for a in agents.values()):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"agents not caught up with vnmgr: {report}")
        time.sleep(0.1)
