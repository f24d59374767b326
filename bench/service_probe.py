"""Run inside a VM namespace by bench.services: a rate-controlled DHCP/DNS flood, or a
client that times answers one at a time (client-side round trip through the switch and
the vna: an upper bound of packet-in -> packet-out).

    python -m bench.service_probe flood dhcp|dns <mac> <dns_ip> <rate> <seconds>
    python -m bench.service_probe probe dhcp|dns <mac> <dns_ip> <count> <interval> <name>
Prints one JSON line.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import sys
import time

import dns.message
from os_ken.lib.packet import dhcp, ethernet, ipv4, packet, udp

ETH_P_IP = 0x0800


def dhcp_discover(mac: str, xid: int) -> bytes:
    p = packet.Packet()
    p.add_protocol(ethernet.ethernet(dst="ff:ff:ff:ff:ff:ff", src=mac, ethertype=ETH_P_IP))
    p.add_protocol(ipv4.ipv4(src="0.0.0.0", dst="255.255.255.255", proto=17))
    p.add_protocol(udp.udp(src_port=68, dst_port=67))
    p.add_protocol(dhcp.dhcp(op=1, chaddr=mac, xid=xid, options=dhcp.options(
        option_list=[dhcp.option(tag=53, value=b"\x01")])))
    p.serialize()
    return bytes(p.data)


def is_offer(frame: bytes, xid: int) -> bool:
    if len(frame) < 14 + 20 + 8 + 8 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
        return False
    ihl = (frame[14] & 15) * 4
    u = 14 + ihl
    return (struct.unpack("!H", frame[u + 2:u + 4])[0] == 68
            and struct.unpack("!I", frame[u + 12:u + 16])[0] == xid)


def raw_socket() -> socket.socket:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
    s.bind(("eth0", 0))
    return s


def flood(kind: str, mac: str, dns_ip: str, rate: int, seconds: float) -> dict:
    if kind == "dhcp":
        s, frame = raw_socket(), dhcp_discover(mac, 0xF100D)
        send = lambda: s.send(frame)  # noqa: E731
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setblocking(False)
        wire = dns.message.make_query("vm2", "A").to_wire()
        send = lambda: s.sendto(wire, (dns_ip, 53))  # noqa: E731
    sent = errors = 0
    start = time.monotonic()
    while (elapsed := time.monotonic() - start) < seconds:
        target = int(elapsed * rate)
        while sent < target:
            try:
                send()
            except OSError:
                errors += 1
            sent += 1
        time.sleep(0.0005)
    return {"sent": sent, "errors": errors, "seconds": time.monotonic() - start,
            "rate": sent / (time.monotonic() - start)}


def probe(kind: str, mac: str, dns_ip: str, count: int, interval: float, name: str) -> dict:
    rtts, lost = [], 0
    if kind == "dhcp":
        s = raw_socket()
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1.0)
    for i in range(count):
        xid = (os.getpid() << 12 | i) & 0xFFFFFFFF
        if kind == "dhcp":
            frame = dhcp_discover(mac, xid)
        else:
            q = dns.message.make_query(name, "A")
            q.id = i & 0xFFFF
            wire = q.to_wire()
        t0 = time.perf_counter()
        if kind == "dhcp":
            s.send(frame)
        else:
            s.sendto(wire, (dns_ip, 53))
        deadline = t0 + 1.0
        got = False
        while (left := deadline - time.perf_counter()) > 0:
            s.settimeout(left)
            try:
                data = s.recv(4096)
            except TimeoutError:
                break
            if (kind == "dhcp" and is_offer(data, xid)) or (
                    kind == "dns" and data[:2] == struct.pack("!H", i & 0xFFFF)):
                got = True
                break
        if got:
            rtts.append((time.perf_counter() - t0) * 1000)
        else:
            lost += 1
        time.sleep(interval)
    return {"kind": kind, "count": count, "answered": len(rtts), "lost": lost, "rtt_ms": rtts}


def main(argv: list[str]) -> int:
    mode, kind, mac, dns_ip = argv[:4]
    if mode == "flood":
        out = flood(kind, mac, dns_ip, int(argv[4]), float(argv[5]))
    else:
        out = probe(kind, mac, dns_ip, int(argv[4]), float(argv[5]), argv[6])
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
