"""In-process benchmark of the dhcp feature's handler (vna.features.dhcp.answer): the
time from a punted DHCP frame to the reply frames, with N interfaces in the model.

    .venv/bin/python -m bench.dhcp_answer [--interfaces 10000] [--requests 2000]

The model: one datapath holding every vif (the worst case for per-port lookups), about
N/200 networks of up to 200 vifs, each with a dhcp and a dns service, one router on all
of them.
Prints p50/p99/max of DISCOVER->OFFER and REQUEST->ACK (issue 10: p99 under 10 ms from
packet-in to packet-out at the vna; this is the handler's share, without the switch).
"""

from __future__ import annotations

import argparse
import ipaddress
import statistics
import time

from os_ken.lib.packet import dhcp, ethernet, ipv4, packet, udp

from vna.features.dhcp import DISCOVER, KIND_DHCP, REQUEST, answer
from vna.punt import PacketIn
from vna.view import LocalBinding, View


def model(n: int) -> tuple[dict, dict[str, int], list[tuple[str, str, int]]]:
    rows: dict[str, dict] = {r: {} for r in (
        "networks", "interfaces", "mac_leases", "ip_leases", "routes", "route_links",
        "active_interfaces", "network_services")}
    ids = iter(range(1, 10**7))

    def add(resource: str, uuid: str, **fields) -> str:
        rows[resource][uuid] = {"uuid": uuid, "id": next(ids), **fields}
        return uuid

    def iface(name: str, mode: str, network: str, ip: str, mac: str, **extra) -> str:
        u = add("interfaces", f"if-{name}", mode=mode, owner_datapath_uuid="dp-1",
                enable_routing=extra.get("routing", False))
        ml = add("mac_leases", f"ml-{name}", interface_uuid=u, mac_address=mac)
        add("ip_leases", f"il-{name}", interface_uuid=u, network_uuid=network,
            mac_lease_uuid=ml, ipv4_address=ip)
        return u

    add("route_links", "rl-r", mac_address="02:00:00:00:00:01")
    ports, clients = {}, []
    networks = n // 200 + 1  # at most 200 vifs per /24
    for k in range(networks):
        net = ipaddress.IPv4Network(f"10.{k // 250}.{k % 250}.0/24")
        nw = add("networks", f"nw-{k}", ipv4_network=str(net.network_address), ipv4_prefix=24,
                 network_mode="virtual", domain_name="bench.test", mtu=None)
        gw = iface(f"gw{k}", "simulated", nw, str(net[1]),
                   f"02:01:00:00:{k >> 8:02x}:{k & 255:02x}", routing=True)
        add("routes", f"rt-{k}", interface_uuid=gw, route_link_uuid="rl-r", network_uuid=nw,
            ipv4_network=str(net.network_address), ipv4_prefix=24, ingress=True, egress=True)
        for kind, host in (("dhcp", 2), ("dns", 3)):
            s = iface(f"{kind}{k}", "simulated", nw, str(net[host]),
                      f"02:02:{host:02x}:00:{k >> 8:02x}:{k & 255:02x}")
            add("network_services", f"ns-{kind}{k}", interface_uuid=s, type=kind)
    for i in range(n):
        k = i % networks
        net = ipaddress.IPv4Network(f"10.{k // 250}.{k % 250}.0/24")
        mac = f"52:54:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}"
        u = iface(f"v{i}", "vif", f"nw-{k}", str(net[10 + i // networks]), mac)
        add("active_interfaces", f"ai-{i}", interface_uuid=u, datapath_uuid="dp-1",
            state="active")
        ports[u] = 10 + i
        clients.append((mac, str(net[10 + i // networks]), 10 + i))
    return rows, ports, clients


def frame(mac: str, kind: int, requested: str | None = None) -> bytes:
    opts = [dhcp.option(tag=53, value=bytes([kind]))]
    if requested:
        opts.append(dhcp.option(tag=50, value=ipaddress.IPv4Address(requested).packed))
    p = packet.Packet()
    p.add_protocol(ethernet.ethernet(dst="ff:ff:ff:ff:ff:ff", src=mac, ethertype=0x0800))
    p.add_protocol(ipv4.ipv4(src="0.0.0.0", dst="255.255.255.255", proto=17))
    p.add_protocol(udp.udp(src_port=68, dst_port=67))
    p.add_protocol(dhcp.dhcp(op=1, chaddr=mac, xid=7, options=dhcp.options(option_list=opts)))
    p.serialize()
    return bytes(p.data)


def main() -> int:
    args = argparse.ArgumentParser()
    args.add_argument("--interfaces", type=int, default=10000)
    args.add_argument("--requests", type=int, default=2000)
    opts = args.parse_args()
    rows, ports, clients = model(opts.interfaces)
    view = View(rows, LocalBinding("dp-1", ports=ports))
    step = max(1, len(clients) // opts.requests)
    for label, kind in (("DISCOVER->OFFER", DISCOVER), ("REQUEST->ACK", REQUEST)):
        times = []
        for mac, ip, port in clients[::step][:opts.requests]:
            data = frame(mac, kind, ip if kind == REQUEST else None)
            started = time.perf_counter()
            replies = answer(view, PacketIn(KIND_DHCP << 56, 5, "action", port, data))
            times.append((time.perf_counter() - started) * 1000)
            assert len(replies) == 1, (mac, ip)
        times.sort()
        print(f"{label}: {len(times)} answers with {opts.interfaces} interfaces: "
              f"p50 {statistics.median(times):.3f} ms, p99 {times[int(len(times) * .99) - 1]:.3f}"
              f" ms, max {times[-1]:.3f} ms (the first includes building the View's caches)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
