"""Data plane: iperf3 TCP between VM namespaces, distributed router vs a "VM router".

One cloud per transport, built through the webapi (`lab.cloud.Cloud`), two hosts:
  - nw-a 10.1.0.0/24 and nw-b 10.2.0.0/24 joined by a distributed router (rl-r1);
    VMs a1 (h1), b1 (h1) and a2, b2 (h2).
  - nw-c and nw-d: two *unrouted* virtual networks (both 10.3.0.0/16, see below) and
    two router namespaces ("VM routers": ip_forward=1, one leg on each network, each leg
    a VM interface of the model): vr1 on h1, vr2 on h2. VMs c1 (h1) and d2 (h2) use vr1
    as gateway; e1 and f1 (both on h1) use vr2 on h2, so their traffic hairpins.

Anti-spoofing lets a VM port send only its leased source addresses, and the model has
no "port security off" switch. A VM router forwards other VMs' addresses, so each leg
also holds an IP lease for the far VM's address (the allowed-address-pair pattern).
A lease must lie inside its network, hence both networks span 10.3.0.0/16 while each VM
and leg is configured with a /24 of its own and routes through its router.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from bench.common import log, metrics, table
from lab import TUNNEL_VM_MTU, Lab, Netns, Vm, add_veth
from lab.cloud import Cloud
from lab.services import tcp_sockets

IPERF_PORT = 5201
PING_COUNT = 40


@dataclass(frozen=True)
class Case:
    key: str
    label: str
    src: str
    dst: str


CASES = (
    Case("l2", "(a) same network, h1 -> h2", "a1", "a2"),
    Case("routed", "(b) distributed router, h1 -> h2", "a1", "b2"),
    Case("vm_router", "(c) VM router on h1, h1 -> h2", "c1", "d2"),
    Case("routed_local", "(d) distributed router, h1 -> h1", "a1", "b1"),
    Case("vm_router_hairpin", "(e) VM router on h2, h1 -> h1", "e1", "f1"),
)
# VM router pairs: router, its host, (src VM, host, address/24, leg address), same for dst.
VM_ROUTERS = {
    "vr1": ("h1", ("c1", "h1", "10.3.1.11", "10.3.1.1"), ("d2", "h2", "10.3.2.12", "10.3.2.1")),
    "vr2": ("h2", ("e1", "h1", "10.3.3.11", "10.3.3.1"), ("f1", "h1", "10.3.4.11", "10.3.4.1")),
}


def mac_for(n: int) -> str:
    return f"10:54:fe:00:00:{n:02x}"


def add_plain_vm(cloud: Cloud, host: str, name: str, network: str, ip: str, gateway: str,
                 mac: str) -> Vm:
    """A VM on `network` configured with a /24 of its own (not the network's prefix)."""
    cloud.create_interface(host, name, network, ip, mac)
    vm = cloud.lab.add_vm(cloud.hosts[host].hv, name, mac, f"{ip}/24", gateway=gateway,
                          iface_id=f"if-{name}", mtu=vm_mtu(cloud))
    cloud.vms[name] = vm
    return vm


def vm_mtu(cloud: Cloud) -> int:
    return TUNNEL_VM_MTU if cloud.transport == "tunnel" else 1500


def add_vm_router(cloud: Cloud, name: str, host: str, legs: list[tuple[str, str, str]],
                  extra: dict[str, str]) -> Vm:
    """A router namespace with one leg per (network, address/24 of the leg, mac): eth0,
    eth1. `extra` {leg network: address}: a further lease on that leg (forwarded source)."""
    assert cloud.api is not None
    (net0, ip0, mac0), (net1, ip1, mac1) = legs
    router = add_plain_vm(cloud, host, name, net0, ip0, "", mac0)
    hv = cloud.hosts[host].hv
    port = f"{name}d"
    cloud.create_interface(host, port, net1, ip1, mac1)
    add_veth(port, hv.netns, "eth1", router.netns, mtu=vm_mtu(cloud), b_mac=mac1)
    router.netns.add_addr("eth1", f"{ip1}/24")
    router.netns.tx_off("eth1")
    hv.ovs.add_port(hv.bridge, port, external_ids={"iface-id": f"if-{port}",
                                                  "attached-mac": mac1})
    for key in ("net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0",
                "net.ipv4.conf.default.rp_filter=0", "net.ipv4.conf.all.send_redirects=0"):
        router.run("sysctl", "-qw", key)
    for network, address in extra.items():
        leg = f"if-{name}" if network == net0 else f"if-{port}"
        cloud.api.post("ip_leases", interface_uuid=leg, network_uuid=network,
                       ipv4_address=address)
    return router


def build(lab: Lab, transport: str) -> Cloud:
    cloud = Cloud(lab, transport=transport).start()
    for host in ("h1", "h2"):
        cloud.add_host(host)
    cloud.add_network("nw-a", "10.1.0.0/24")
    cloud.add_network("nw-b", "10.2.0.0/24")
    cloud.add_router("rl-r1", {"nw-a": "10.1.0.1", "nw-b": "10.2.0.1"})
    cloud.add_vm("h1", "a1", "nw-a", "10.1.0.11")
    cloud.add_vm("h2", "a2", "nw-a", "10.1.0.12")
    cloud.add_vm("h1", "b1", "nw-b", "10.2.0.11")
    cloud.add_vm("h2", "b2", "nw-b", "10.2.0.12")
    cloud.add_network("nw-c", "10.3.0.0/16")
    cloud.add_network("nw-d", "10.3.0.0/16")
    for i, (router, (where, (src, src_host, src_ip, src_gw),
                     (dst, dst_host, dst_ip, dst_gw))) in enumerate(VM_ROUTERS.items()):
        count = 4 * i
        add_vm_router(cloud, router, where,
                      [("nw-c", src_gw, mac_for(count)),
                       ("nw-d", dst_gw, mac_for(count + 1))],
                      {"nw-c": dst_ip, "nw-d": src_ip})
        add_plain_vm(cloud, src_host, src, "nw-c", src_ip, src_gw, mac_for(count + 2))
        add_plain_vm(cloud, dst_host, dst, "nw-d", dst_ip, dst_gw, mac_for(count + 3))
    for case in CASES:
        cloud.wait_ping(case.src, cloud.vms[case.dst].ip, timeout=20)
    return cloud


# ---------------------------------------------------------------------------- probes

def packet_ins(cloud: Cloud) -> dict[str, float]:
    return {name: sum(v for k, v in metrics(host.hv).items()
                      if k.startswith("vnet_vna_packet_ins_total"))
            for name, host in cloud.hosts.items()}


def underlay_packets(cloud: Cloud, host: str) -> int:
    """rx + tx packets of the host's underlay veth (every frame that crossed the wire)."""
    hv = cloud.hosts[host].hv
    port = hv.underlay_port or "ul0"
    out = hv.netns.run("cat", f"/sys/class/net/{port}/statistics/rx_packets",
                       f"/sys/class/net/{port}/statistics/tx_packets").stdout.split()
    return sum(int(x) for x in out)


def iperf(src: Vm, dst: Vm, seconds: int) -> dict[str, Any]:
    """iperf3 TCP from VM `src` to VM `dst`."""
    assert dst.ip is not None
    return iperf_between(src.netns, dst.netns, dst.ip, seconds)


def iperf_between(client: Netns, server: Netns, address: str, seconds: int) -> dict[str, Any]:
    """iperf3 TCP from `client` to the server in `server`, reached at `address`.
    `seen_as`: the client's address as the server saw it (a NAT shows there)."""
    proc = server.popen("iperf3", "-s", "-1", "-J", "-p", str(IPERF_PORT),
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 10
        while tcp_sockets(proc.pid, IPERF_PORT) == 0:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"iperf3 server in {server.name} did not start")
            time.sleep(0.05)
        run = client.run("iperf3", "-c", address, "-p", str(IPERF_PORT), "-t", str(seconds),
                         "-J", check=False, timeout=seconds + 30)
        data = json.loads(run.stdout or "{}")
        if "error" in data or run.returncode:
            raise RuntimeError(f"iperf3 {client.name} -> {address}: {data.get('error')} "
                               f"{run.stderr[-500:]}")
        served = json.loads(proc.communicate(timeout=10)[0] or "{}")
        end = data["end"]
        return {"mbit_s": end["sum_received"]["bits_per_second"] / 1e6,
                "retransmits": end["sum_sent"].get("retransmits", 0),
                "sender_cpu": end.get("cpu_utilization_percent", {}).get("host_total"),
                "seen_as": served.get("start", {}).get("accepted_connection", {}).get("host")}
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(10)


def probe(cloud: Cloud, case: Case) -> dict[str, Any]:
    """Ping: TTL, RTT and how many frames crossed h1's underlay port per round trip."""
    src, dst = cloud.vms[case.src], cloud.vms[case.dst]
    before_ul = underlay_packets(cloud, "h1")
    ping = src.ping(dst.ip, count=PING_COUNT, interval=0.02, wait=1)
    crossings = (underlay_packets(cloud, "h1") - before_ul) / max(ping.received, 1)
    if not ping.ok:
        raise RuntimeError(f"{case.key}: {ping.output}")
    return {"case": case.key, "label": case.label, "src": case.src, "dst": case.dst,
            "ttl": sorted(set(ping.ttls)), "rtt_ms_median": statistics.median(ping.rtts_ms),
            "underlay_frames_per_round_trip_at_h1": round(crossings, 2),
            "runs": [], "packet_ins_during_iperf": dict.fromkeys(cloud.hosts, 0.0)}


def run_transport(transport: str, seconds: int, rounds: int) -> dict[str, Any]:
    with Lab() as lab:
        log(f"dataplane {transport}: building the cloud ({lab.prefix})")
        started = time.monotonic()
        cloud = build(lab, transport)
        log(f"dataplane {transport}: built in {time.monotonic() - started:.1f}s")
        rows = {case.key: probe(cloud, case) for case in CASES}
        # Round-robin, so that a load change on the shared machine hits every case alike.
        for round_ in range(1, rounds + 1):
            for case in CASES:
                row = rows[case.key]
                before = packet_ins(cloud)
                result = iperf(cloud.vms[case.src], cloud.vms[case.dst], seconds)
                after = packet_ins(cloud)
                row["runs"].append({**result, "loadavg": os.getloadavg()[0]})
                for host, value in after.items():
                    row["packet_ins_during_iperf"][host] += value - before[host]
                row["packet_ins_total"] = after
                log(f"dataplane {transport} round {round_} {case.key}: "
                    f"{result['mbit_s']:.0f} Mbit/s")
        for row in rows.values():
            mbits = [r["mbit_s"] for r in row["runs"]]
            row.update(mbit_s=statistics.median(mbits), mbit_s_min=min(mbits),
                       mbit_s_max=max(mbits),
                       retransmits=statistics.median(r["retransmits"] for r in row["runs"]))
        by = {key: row["mbit_s"] for key, row in rows.items()}
        return {"transport": transport, "seconds": seconds, "rounds": rounds,
                "cases": list(rows.values()),
                "ratio_routed_vs_vm_router": by["routed"] / by["vm_router"],
                "ratio_routed_vs_l2": by["routed"] / by["l2"],
                "ratio_routed_local_vs_hairpin": by["routed_local"] / by["vm_router_hairpin"]}


def run(quick: bool, transports: tuple[str, ...] = ("tunnel", "mac2mac"),
        seconds: int | None = None, rounds: int | None = None) -> dict[str, Any]:
    seconds = seconds or (3 if quick else 5)
    rounds = rounds or (2 if quick else 3)
    return {"seconds": seconds, "rounds": rounds,
            "runs": [run_transport(t, seconds, rounds) for t in transports]}


def report(res: dict[str, Any]) -> str:
    out = []
    for r in res["runs"]:
        rows = [[c["label"], c["mbit_s"], f"{c['mbit_s_min']:.0f}-{c['mbit_s_max']:.0f}",
                 c["retransmits"], "/".join(map(str, c["ttl"])),
                 c["underlay_frames_per_round_trip_at_h1"], c["rtt_ms_median"],
                 " ".join(f"{h}:{v:.0f}" for h, v in c["packet_ins_during_iperf"].items())]
                for c in r["cases"]]
        out.append(table(f"5. iperf3 TCP, transport {r['transport']}: median of {r['rounds']} "
                         f"runs of {r['seconds']} s",
                         ["path", "Mbit/s", "range", "retransmits/run", "ping TTL",
                          "underlay frames per ping round trip (h1)", "ping RTT ms",
                          "vna packet-ins during run"], rows))
        out.append(f"{r['transport']}: distributed / VM router (b)/(c) = "
                   f"{r['ratio_routed_vs_vm_router']:.2f}; distributed routed / L2 (b)/(a) = "
                   f"{r['ratio_routed_vs_l2']:.2f}; same-host distributed / hairpin VM router "
                   f"(d)/(e) = {r['ratio_routed_local_vs_hairpin']:.2f}.\n")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dataplane",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 s iperf3 runs")
    parser.add_argument("--transports", default="tunnel,mac2mac")
    parser.add_argument("--seconds", type=int)
    parser.add_argument("--rounds", type=int)
    args = parser.parse_args(argv)
    res = run(args.quick, tuple(args.transports.split(",")), args.seconds, args.rounds)
    print(report(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
