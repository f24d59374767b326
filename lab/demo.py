"""`vnet-demo up|down|status`: the whole system on one machine, on the embedded default.

`up` starts vnmgr and webapi (SQLite, webapi on 127.0.0.1:9090 so the README's curl
walkthrough works against it), two hypervisors (namespaces with their own Open vSwitch
and vna), four VMs on two networks joined by a distributed router, pings across, and
prints the curl equivalent of every API call and a per-hop summary. Everything stays up
until `down`, which removes every process, namespace and file `up` made.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from lab.capture import underlay_packets
from lab.cloud import Cloud
from lab.hosts import Lab, cleanup_stale, list_netns

DEMO_DIR = Path(os.environ.get("VNET_DEMO_DIR", "/tmp/vnet-demo"))
PREFIX = "vdemo-"
WEBAPI_PORT = int(os.environ.get("VNET_DEMO_WEBAPI_PORT", "9090"))

VMS = [  # name, host, network, address
    ("vm1", "h1", "nw-demo1", "10.101.0.11"),
    ("vm2", "h2", "nw-demo1", "10.101.0.12"),
    ("vm3", "h1", "nw-demo2", "10.102.0.13"),
    ("vm4", "h2", "nw-demo2", "10.102.0.14"),
]


def up(transport: str) -> int:
    if (DEMO_DIR / PREFIX.rstrip("-")).exists():
        print("the demo is already up; `.venv/bin/vnet-demo down` first", file=sys.stderr)
        return 1
    lab = Lab(PREFIX, base_dir=DEMO_DIR)
    try:
        cloud = build(Cloud(lab, transport=transport).start(webapi_port=WEBAPI_PORT))
        _report(cloud)
    except BaseException:
        lab.close()
        raise
    print(f"\nwebapi: http://127.0.0.1:{WEBAPI_PORT}/api/1.0/  (try: curl -s "
          f"http://127.0.0.1:{WEBAPI_PORT}/api/1.0/interfaces)")
    print(f"topology page: http://127.0.0.1:{WEBAPI_PORT}/ui/  (a packet's path on it: "
          ".venv/bin/vnctl trace --from if-vm1 --to 10.102.0.14 --ui)")
    print(f"VM shells: ip netns exec {PREFIX}vm1 bash   |   "
          "remove it all: .venv/bin/vnet-demo down")
    # The demo's vnmgr answers only these keys (docs/messaging.md, "Keys and roles").
    print(f"vnmgr's CURVE keys (webapi and agent roles): {cloud.services.keys_dir}")
    return 0


def build(cloud: Cloud) -> Cloud:
    """The demo's world in a started cloud: hosts h1 and h2, networks nw-demo1 and
    nw-demo2 joined by router rl-demo, the four VMS (tests/e2e/test_ui.py draws it)."""
    for host in ("h1", "h2"):
        cloud.add_host(host)
    cloud.add_network("nw-demo1", "10.101.0.0/24")
    cloud.add_network("nw-demo2", "10.102.0.0/24")
    cloud.add_router("rl-demo", {"nw-demo1": "10.101.0.1", "nw-demo2": "10.102.0.1"})
    for name, host, network, address in VMS:
        cloud.add_vm(host, name, network, address)
    return cloud


def _report(cloud: Cloud) -> None:
    assert cloud.api is not None
    print("== what the demo asked the webapi (curl equivalents)")
    for line in cloud.api.curl_log:
        print("  " + line)
    print("\n== pings")
    failures = 0
    for src, dst_name, expect_ttl in (("vm1", "vm2", 64), ("vm1", "vm4", 63),
                                      ("vm3", "vm2", 63), ("vm1", "vm3", 63)):
        dst = cloud.vms[dst_name]
        cloud.wait_ping(src, dst.ip, timeout=10)
        result = cloud.vms[src].ping(dst.ip, count=3, interval=0.2)
        hops = 64 - min(result.ttls) if result.ttls else None
        status = "ok" if result.ok and result.ttls and result.ttls[0] == expect_ttl else "FAIL"
        failures += status != "ok"
        print(f"  {src} ({cloud.vms[src].ip}) -> {dst_name} ({dst.ip}): "
              f"{result.received}/{result.transmitted} replies, ttl {result.ttls[:1]}, "
              f"routed hops {hops}  [{status}]")
    print("\n== per-hop view of vm1 -> vm4 (nw-demo1 -> nw-demo2, h1 -> h2)")
    src, dst = cloud.hosts["h1"], cloud.hosts["h2"]
    lines = underlay_packets(cloud, "h2", lambda: cloud.vms["vm1"].ping(cloud.vms["vm4"].ip,
                                                                       count=2, interval=0.2))
    print("  1. vm1 sends to its gateway 10.101.0.1; h1's flows answer the ARP locally")
    print("  2. h1 routes it (rl-demo, TTL 64->63, MACs rewritten) - no router VM")
    print(f"  3. h1 sends it straight to h2 over the underlay ({cloud.transport}): "
          f"{src.underlay_ip} -> {dst.underlay_ip}")
    for line in lines[:2]:
        print(f"       captured on h2: {line}")
    print("  4. h2 delivers it to vm4; one physical hop, no third host")
    if failures:
        raise SystemExit(f"{failures} ping checks failed")


def down() -> int:
    removed = cleanup_stale(PREFIX, DEMO_DIR)
    print(f"removed {len(removed)} demo objects" if removed else "nothing to remove")
    return 0


def status() -> int:
    spaces = [n for n in list_netns() if n.startswith(PREFIX)]
    print(f"demo namespaces: {', '.join(spaces) or 'none'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vnet-demo", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("up", "down", "status"))
    parser.add_argument("--transport", choices=("tunnel", "mac2mac"), default="tunnel")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("vnet-demo needs root (network namespaces and Open vSwitch)", file=sys.stderr)
        return 1
    if args.action == "up":
        return up(args.transport)
    return down() if args.action == "down" else status()
