"""Services benchmark (issue 10, "Speed and robustness"): DHCP and DNS answers, and a
VM flooding them.

    .venv/bin/python -m bench.services [--interfaces 10000] [--requests 2000]
        [--real-interfaces 10000] [--rate 10000] [--seconds 10] [--calls 100] [--kind dns,dhcp]

1. Handler: in process, the dhcp and dns features' handlers (vna.features.dhcp.answer,
   vna.features.dns.answer) on a View of N interfaces (bench.dhcp_answer's model plus a
   dns_services row per network and one record per vif): p50/p99/max from the punted
   frame to the reply frames. Reference: parsing the same frame with os_ken (the floor of
   any handler).
2. Real switch: one hypervisor h1 (+ h2, for remote vifs) with its vna, network nw-a with
   a dhcp (10.1.0.2) and a dns (10.1.0.3) service, VMs vm1 (the flooder) and vm2 (the
   victim) on h1, and N filler simulated interfaces (one ARP responder flow each) on /24
   networks joined to both (a vif owned by h2 without a port stays unbound: no flows).
   - idle: vm2 times DHCP DISCOVER->OFFER (raw AF_PACKET) and DNS A queries (UDP)
     client-side: switch + vna round trip, an upper bound of packet-in -> packet-out.
     Reference: ping vm2 -> vm3 (a VM on h1), the switch round trip alone.
   - flood: vm1 sends DISCOVERs or DNS queries at --rate for --seconds; meanwhile the
     convergence of unrelated API changes (bench.vnabench.bench_convergence, through the
     webapi: a simulated interface on nw-conv, its flow seen in both switches' monitors)
     and vm2's answers are timed; then the meter stats of vm1's and vm2's ports.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import dns.message
from os_ken.lib.packet import ethernet, ipv4, packet, udp

from bench.common import RESULTS_DIR, log, machine_info, percentile, table
from bench.dhcp_answer import frame as dhcp_frame
from bench.dhcp_answer import model as dhcp_model
from vna.features import dhcp as dhcp_feature
from vna.features import dns as dns_feature
from vna.punt import PacketIn
from vna.view import LocalBinding, View

REPO = Path(__file__).resolve().parents[1]


def stats(ms: list[float]) -> dict[str, float]:
    if not ms:
        return {"n": 0, "p50_ms": float("nan"), "p99_ms": float("nan"), "max_ms": float("nan")}
    return {"n": len(ms), "p50_ms": percentile(ms, 50), "p99_ms": percentile(ms, 99),
            "max_ms": max(ms), "mean_ms": statistics.mean(ms)}


# ---------------------------------------------------------------------------- 1. handler

def dns_frame(src_mac: str, dst_mac: str, src_ip: str, dst_ip: str, name: str,
              rdtype: str = "A") -> bytes:
    p = packet.Packet()
    p.add_protocol(ethernet.ethernet(dst=dst_mac, src=src_mac, ethertype=0x0800))
    p.add_protocol(ipv4.ipv4(src=src_ip, dst=dst_ip, proto=17, ttl=64))
    p.add_protocol(udp.udp(src_port=40000, dst_port=53))
    p.add_protocol(dns.message.make_query(name, rdtype).to_wire())
    p.serialize()
    return bytes(p.data)


def bench_handler(n: int, requests: int) -> dict[str, Any]:
    rows, ports, clients = dhcp_model(n)
    rows["dns_services"], rows["dns_records"] = {}, {}
    networks = n // 200 + 1
    for k in range(networks):
        rows["dns_services"][f"dnss-{k}"] = {"uuid": f"dnss-{k}", "id": 10**7 + k,
                                             "network_service_uuid": f"ns-dns{k}",
                                             "public_dns": None}
    for i, (_, ip, _) in enumerate(clients):
        k = i % networks
        rows["dns_records"][f"r-{i}"] = {"uuid": f"r-{i}", "id": 2 * 10**7 + i,
                                         "dns_service_uuid": f"dnss-{k}", "name": f"vm{i}",
                                         "ipv4_address": ip, "ttl": 60}
    view = View(rows, LocalBinding("dp-1", ports=ports))
    step = max(1, len(clients) // requests)
    sample = list(enumerate(clients))[::step][:requests]
    dns_macs = {k: rows["mac_leases"][f"ml-dns{k}"]["mac_address"] for k in range(networks)}

    def dns_ip(k: int) -> str:
        return str(ipaddress.IPv4Network(f"10.{k // 250}.{k % 250}.0/24")[3])

    cases = {
        "DHCP DISCOVER->OFFER": (dhcp_feature.answer, dhcp_feature.KIND_DHCP,
                                 lambda i, mac, ip: dhcp_frame(mac, dhcp_feature.DISCOVER)),
        "DHCP REQUEST->ACK": (dhcp_feature.answer, dhcp_feature.KIND_DHCP,
                              lambda i, mac, ip: dhcp_frame(mac, dhcp_feature.REQUEST, ip)),
        "DNS A (name.domain)": (dns_feature.answer, dns_feature.KIND_DNS,
                                lambda i, mac, ip: dns_frame(
                                    mac, dns_macs[i % networks], ip, dns_ip(i % networks),
                                    f"vm{(i + networks) % n}.bench.test")),
        "DNS PTR": (dns_feature.answer, dns_feature.KIND_DNS,
                    lambda i, mac, ip: dns_frame(
                        mac, dns_macs[i % networks], ip, dns_ip(i % networks),
                        dns.reversename.from_address(ip).to_text(), "PTR")),
        "DNS AAAA of a known name (empty)": (dns_feature.answer, dns_feature.KIND_DNS,
                                             lambda i, mac, ip: dns_frame(
                                                 mac, dns_macs[i % networks], ip,
                                                 dns_ip(i % networks), f"vm{i}", "AAAA")),
    }
    out: dict[str, Any] = {"interfaces": n, "requests": len(sample)}
    ref = []
    for label, (handler, kind, build) in cases.items():
        times = []
        for i, (mac, ip, port) in sample:
            data = build(i, mac, ip)
            started = time.perf_counter()
            replies = handler(view, PacketIn(kind << 56, 5, "action", port, data))
            times.append((time.perf_counter() - started) * 1000)
            assert len(replies) == 1, (label, mac, ip, replies)
            started = time.perf_counter()
            packet.Packet(data)
            ref.append((time.perf_counter() - started) * 1000)
        out[label] = stats(times)
    out["reference: os_ken parse of the frame"] = stats(ref)
    return out


# ---------------------------------------------------------------------------- 2. real switch

NW_A = ipaddress.IPv4Network("10.1.0.0/24")
DHCP_IP, DNS_IP = "10.1.0.2", "10.1.0.3"


def in_vm(vm: Any, *args: str) -> subprocess.Popen:
    return vm.netns.popen(sys.executable, "-m", "bench.service_probe", *args,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)


def result_of(proc: subprocess.Popen, timeout: float) -> dict:
    out, err = proc.communicate(timeout=timeout)
    if proc.returncode:
        raise RuntimeError(f"probe failed: {err[-2000:]}")
    return json.loads(out.strip().splitlines()[-1])


def meter_stats(hv: Any, ofport: int) -> dict[str, int]:
    text = hv.ovs.ofctl("meter-stats", "br-int", f"meter={ofport}")
    seen = re.search(r"packet_in_count:(\d+)", text)
    dropped = re.search(r"0: packet_count:(\d+)", text)
    return {"packets": int(seen.group(1)) if seen else -1,
            "dropped": int(dropped.group(1)) if dropped else -1}


class ApiBed:
    """What bench.vnabench.bench_convergence needs of a Bed: hvs and call(), here through
    the Cloud's webapi (creates only)."""

    def __init__(self, cloud: Any) -> None:
        self.hvs = {name: host.hv for name, host in cloud.hosts.items()}
        self.api = cloud.api

    def call(self, op: str, resource: str, target: str | None = None, **params: Any) -> Any:
        assert op == "create" and target is None, op
        return self.api.post(resource, **params)


def probe_pair(c: Any, count: int, interval: float) -> dict[str, Any]:
    vm2 = c.vms["vm2"]
    out = {}
    for kind in ("dhcp", "dns"):
        r = result_of(in_vm(vm2, "probe", kind, vm2.mac, DNS_IP, str(count), str(interval),
                            "vm1.bench.test"), timeout=count * (interval + 1.1) + 30)
        out[kind] = {**stats(r["rtt_ms"]), "answered": r["answered"], "lost": r["lost"]}
    return out


def bench_real(n: int, rate: int, seconds: float, calls: int, kinds: list[str]) -> dict:
    from bench.vnabench import CONV_NET
    from lab import Lab
    from lab.cloud import Cloud
    res: dict[str, Any] = {"filler_interfaces": n, "rate": rate, "seconds": seconds}
    with Lab() as lab:
        c = Cloud(lab, transport="tunnel").start()
        c.add_host("h1")
        c.add_host("h2")
        assert c.api is not None
        c.add_network("nw-a", str(NW_A))
        c.api.put("networks/nw-a", domain_name="bench.test")
        c.add_network(CONV_NET, "10.250.0.0/16")
        for name, ip, kind, mac in (("dhcpa", DHCP_IP, "dhcp", "02:00:30:00:00:02"),
                                    ("dnsa", DNS_IP, "dns", "02:00:30:00:00:03")):
            c.api.post("interfaces", uuid=f"if-{name}", mode="simulated", network_uuid="nw-a",
                       mac_address=mac, ipv4_address=ip)
            c.api.post("network_services", uuid=f"ns-{name}", interface_uuid=f"if-{name}",
                       type=kind)
        c.api.post("dns_services", uuid="dnss-a", network_service_uuid="ns-dnsa")
        for i, vm in enumerate(("vm1", "vm2", "vm3"), start=11):
            c.add_vm("h1", vm, "nw-a", f"10.1.0.{i}")
            c.api.post("dns_services/dnss-a/dns_records", uuid=f"dnsr-{vm}", name=vm,
                       ipv4_address=f"10.1.0.{i}")
        bed = ApiBed(c)
        started = time.monotonic()
        for k in range((n + 199) // 200):
            net = f"nw-f{k}"
            c.add_network(net, f"10.{100 + k // 250}.{k % 250}.0/24")
            for j in range(min(200, n - k * 200)):
                bed.call("create", "interfaces", uuid=f"if-f{k}x{j}", mode="simulated",
                         network_uuid=net,
                         mac_address=f"16:01:{k >> 8 & 255:02x}:{k & 255:02x}:00:{j:02x}",
                         ipv4_address=f"10.{100 + k // 250}.{k % 250}.{10 + j}")
        res["populate_seconds"] = time.monotonic() - started
        res["h1_flows"] = len(c.flows("h1"))
        log(f"services: {n} filler vifs in {res['populate_seconds']:.1f}s "
            f"({res['h1_flows']} flows on h1 so far); waiting for answers")
        c.wait_ping("vm2", "10.1.0.13", timeout=120)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:  # the vna has caught up when vm2 is answered
            if probe_pair(c, 3, 0.1)["dns"]["answered"] == 3:
                break
            time.sleep(1)
        ping = c.vms["vm2"].ping("10.1.0.13", count=50, interval=0.02, wait=1)
        res["reference_ping_vm2_vm3"] = {"output": ping.output.splitlines()[-1:]}
        m = re.search(r"= [\d.]+/([\d.]+)/([\d.]+)", ping.output)
        if m:
            res["reference_ping_avg_ms"], res["reference_ping_max_ms"] = map(float, m.groups())
        res["idle"] = probe_pair(c, 200, 0.02)
        log(f"services: idle {json.dumps(res['idle'])}")
        res["idle_convergence"] = bench_convergence_offset(bed, calls, 0)
        log(f"services: idle convergence p99 {res['idle_convergence']['p99_ms']:.1f} ms")
        h1 = c.hosts["h1"].hv
        vm1, vm2 = c.vms["vm1"], c.vms["vm2"]
        offset = calls
        for kind in kinds:
            m1, m2 = meter_stats(h1, vm1.ofport), meter_stats(h1, vm2.ofport)
            flood = in_vm(vm1, "flood", kind, vm1.mac, DNS_IP, str(rate), str(seconds))
            time.sleep(0.5)
            probes: dict[str, Any] = {}
            probe_thread = threading.Thread(
                target=lambda out=probes: out.update(probe_pair(c, int(seconds * 10) // 2,
                                                                0.05)))
            probe_thread.start()
            conv = bench_convergence_offset(bed, calls, offset)
            offset += calls
            probe_thread.join()
            sent = result_of(flood, timeout=seconds + 60)
            a1, a2 = meter_stats(h1, vm1.ofport), meter_stats(h1, vm2.ofport)
            res[f"flood_{kind}"] = {
                "flood": sent, "convergence": conv, "victim": probes,
                "flooder_meter": {k: a1[k] - m1[k] for k in a1},
                "victim_meter": {k: a2[k] - m2[k] for k in a2},
            }
            log(f"services: flood {kind}: {json.dumps(res[f'flood_{kind}'])[:600]}")
    return res


def bench_convergence_offset(bed: Any, calls: int, offset: int) -> dict[str, Any]:
    """bench_convergence with interface names/MACs/IPs shifted by `offset` (several runs
    in one lab)."""
    from bench import vnabench

    class Shifted:
        hvs = bed.hvs

        @staticmethod
        def call(op: str, resource: str, target: str | None = None, **params: Any) -> Any:
            k = int(params["uuid"].removeprefix("if-conv")) + offset
            # A simulated interface on nw-conv (joined to h1 and h2): its ARP responder
            # flow appears on both switches. (A vif owned by h2 stays unbound: no flows.)
            params.pop("owner_datapath_uuid", None)
            params.update(uuid=f"if-conv{k}", mode="simulated",
                          mac_address=f"16:00:00:00:{k >> 8 & 255:02x}:{k & 255:02x}",
                          ipv4_address=str(ipaddress.IPv4Address("10.250.1.0") + k))
            return bed.call(op, resource, target, **params)

    real_monitor = vnabench.FlowMonitor

    class ShiftedMonitor(real_monitor):  # type: ignore[misc,valid-type]
        def expect(self, mac: str) -> threading.Event:
            k = int(mac.replace(":", "")[-4:], 16) + offset
            return super().expect(f"16:00:00:00:{k >> 8 & 255:02x}:{k & 255:02x}")

        def seen_at(self, mac: str) -> float | None:
            k = int(mac.replace(":", "")[-4:], 16) + offset
            return super().seen_at(f"16:00:00:00:{k >> 8 & 255:02x}:{k & 255:02x}")

    vnabench.FlowMonitor = ShiftedMonitor
    try:
        return vnabench.bench_convergence(Shifted(), calls)  # type: ignore[arg-type]
    finally:
        vnabench.FlowMonitor = real_monitor


# ---------------------------------------------------------------------------- report

def report(res: dict[str, Any]) -> str:
    out = []
    h = res.get("handler")
    if h:
        rows = [[label, s["n"], s["p50_ms"], s["p99_ms"], s["max_ms"]]
                for label, s in h.items() if isinstance(s, dict)]
        out.append(table(f"6a. DHCP/DNS handler, packet-in frame -> packet-out frames, "
                         f"{h['interfaces']:,} interfaces (target: p99 < 10 ms)",
                         ["answer", "n", "p50 ms", "p99 ms", "max ms"], rows))
    r = res.get("real")
    if r:
        rows = [[f"{k.upper()} from vm2, idle", s["answered"], s["lost"], s["p50_ms"],
                 s["p99_ms"], s["max_ms"]] for k, s in r["idle"].items()]
        if "reference_ping_avg_ms" in r:
            rows.append(["reference: ping vm2->vm3 (switch only), avg/max", 50, "",
                         r["reference_ping_avg_ms"], "", r["reference_ping_max_ms"]])
        out.append(table(f"6b. Client-side round trip through OVS and the vna, "
                         f"{r['filler_interfaces']:,} filler interfaces (upper bound of "
                         "packet-in -> packet-out)",
                         ["probe", "answered", "lost", "p50 ms", "p99 ms", "max ms"], rows))
        rows = []
        ic = r["idle_convergence"]
        rows.append(["none", "", ic["p50_ms"], ic["p99_ms"], ic["max_ms"], "", "", "", ""])
        for kind in ("dhcp", "dns"):
            f = r.get(f"flood_{kind}")
            if not f:
                continue
            c, v = f["convergence"], f["victim"]
            rows.append([f"{kind} at {f['flood']['rate']:,.0f}/s x {r['seconds']:.0f} s",
                         f["flood"]["sent"], c["p50_ms"], c["p99_ms"], c["max_ms"],
                         f"{v['dhcp']['answered']}/{v['dhcp']['answered'] + v['dhcp']['lost']}"
                         f" p99 {v['dhcp']['p99_ms']:.1f} ms",
                         f"{v['dns']['answered']}/{v['dns']['answered'] + v['dns']['lost']}"
                         f" p99 {v['dns']['p99_ms']:.1f} ms",
                         f"{f['flooder_meter']['packets']:,}/{f['flooder_meter']['dropped']:,}",
                         f"{f['victim_meter']['packets']}/{f['victim_meter']['dropped']}"])
        out.append(table("6c. vm1 floods; convergence of unrelated API changes (target: p99 "
                         "< 100 ms) and vm2's answers during the flood",
                         ["flood", "sent", "conv p50 ms", "conv p99 ms", "conv max ms",
                          "vm2 DHCP answered", "vm2 DNS answered",
                          "vm1 meter packets/dropped", "vm2 meter packets/dropped"], rows))
    return "\n".join(out)


def run(quick: bool, interfaces: int | None = None, real: bool = True) -> dict[str, Any]:
    n = interfaces or (1000 if quick else 10000)
    res: dict[str, Any] = {"handler": bench_handler(n, 500 if quick else 2000)}
    log(f"services: handler {json.dumps(res['handler'])[:400]}")
    if real:
        res["real"] = bench_real(n, 10000, 3 if quick else 10, 30 if quick else 100,
                                 ["dhcp", "dns"])
    return res


def main() -> int:
    args = argparse.ArgumentParser()
    args.add_argument("--interfaces", type=int, default=10000)
    args.add_argument("--requests", type=int, default=2000)
    args.add_argument("--real-interfaces", type=int, default=10000)
    args.add_argument("--rate", type=int, default=10000)
    args.add_argument("--seconds", type=float, default=10)
    args.add_argument("--calls", type=int, default=100)
    args.add_argument("--kind", default="dhcp,dns")
    args.add_argument("--handler-only", action="store_true")
    opts = args.parse_args()
    res: dict[str, Any] = {"machine": machine_info(),
                           "handler": bench_handler(opts.interfaces, opts.requests)}
    if not opts.handler_only:
        if os.geteuid() != 0:
            raise SystemExit("the real-switch part needs root (or --handler-only)")
        os.environ["PATH"] += os.pathsep + "/usr/sbin" + os.pathsep + "/sbin"
        res["real"] = bench_real(opts.real_interfaces, opts.rate, opts.seconds, opts.calls,
                                 opts.kind.split(","))
    text = report(res)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"services-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps({**res, "report_markdown": text}, indent=2, default=str))
    print(text)
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
