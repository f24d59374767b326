"""The lab library itself, proven with real packets and static flows (no vna)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lab import TUNNEL_VM_MTU, Hypervisor, Lab, Underlay, Vm, cleanup_stale, list_netns
from lab.proc import is_alive
from lab.services import start_service

pytestmark = pytest.mark.e2e

MAC1, MAC2 = "02:00:00:00:00:01", "02:00:00:00:00:02"
HOST_MAC = {"hva": "02:ff:00:00:00:0a", "hvb": "02:ff:00:00:00:0b"}
VM_PORT, TUNNEL_PORT, UNDERLAY_PORT = 1, 10, 20
SEGMENT = 5001
TEN_MB = 10 * 1024 * 1024


def two_hypervisors(lab: Lab) -> tuple[Hypervisor, Hypervisor]:
    return lab.add_hypervisor("hva", 0xA), lab.add_hypervisor("hvb", 0xB)


def vxlan_flows(my_mac: str, peer_mac: str) -> list[str]:
    """A one-segment L2 network over VXLAN: VM port <-> tunnel port."""
    out = f"actions=set_field:{SEGMENT}->tun_id,output:{TUNNEL_PORT}"
    tun = f"table=0,priority=50,in_port={TUNNEL_PORT},tun_id={SEGMENT}"
    return [
        f"table=0,priority=50,in_port={VM_PORT},dl_dst={peer_mac},{out}",
        f"table=0,priority=50,in_port={VM_PORT},dl_dst=ff:ff:ff:ff:ff:ff,{out}",
        f"{tun},dl_dst={my_mac},actions=output:{VM_PORT}",
        f"{tun},dl_dst=ff:ff:ff:ff:ff:ff,actions=output:{VM_PORT}",
    ]


def mac2mac_flows(hv: Hypervisor, peer: Hypervisor, local: Vm, remote: Vm) -> list[str]:
    """ARP answered locally; IP leaves with host MACs, the receiver restores VM MACs."""
    arp_reply = (
        "move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],"
        f"set_field:{remote.mac}->eth_src,set_field:2->arp_op,"
        "move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],"
        f"set_field:{remote.mac}->arp_sha,set_field:{remote.ip}->arp_spa,IN_PORT"
    )
    return [
        f"priority=100,in_port={VM_PORT},arp,arp_op=1,arp_tpa={remote.ip},actions={arp_reply}",
        f"priority=50,in_port={VM_PORT},ip,nw_dst={remote.ip},"
        f"actions=set_field:{hv.underlay_mac}->eth_src,set_field:{peer.underlay_mac}->eth_dst,"
        f"output:{UNDERLAY_PORT}",
        f"priority=50,in_port={UNDERLAY_PORT},ip,dl_dst={hv.underlay_mac},"
        f"nw_src={remote.ip},nw_dst={local.ip},"
        f"actions=set_field:{remote.mac}->eth_src,set_field:{local.mac}->eth_dst,"
        f"output:{VM_PORT}",
    ]


def assert_ping_and_transfer(vm1: Vm, vm2: Vm) -> None:
    ping = vm1.ping(vm2.ip, count=3)
    assert ping.ok, ping.output
    assert ping.ttls == [64, 64, 64]  # one L2 segment: nobody decrements the TTL
    transfer = vm1.tcp_transfer(vm2, TEN_MB)
    assert transfer.ok, transfer
    assert transfer.received == TEN_MB
    back = vm2.tcp_transfer(vm1, TEN_MB // 10)
    assert back.ok, back


def test_vxlan_over_br_phy(lab: Lab) -> None:
    hva, hvb = two_hypervisors(lab)
    underlay = lab.add_underlay()
    hva.attach_underlay(underlay, "192.168.100.1/24", mac=HOST_MAC["hva"])
    hvb.attach_underlay(underlay, "192.168.100.2/24", mac=HOST_MAC["hvb"])
    assert hva.add_tunnel(remote_ip=hvb.underlay_ip, ofport=TUNNEL_PORT) == TUNNEL_PORT
    assert hvb.add_tunnel(remote_ip=hva.underlay_ip, ofport=TUNNEL_PORT) == TUNNEL_PORT
    hva.seed_tunnel_neighbor(hvb)
    hvb.seed_tunnel_neighbor(hva)
    vm1 = lab.add_vm(hva, "vm1", MAC1, "10.0.0.1/24", mtu=TUNNEL_VM_MTU, ofport=VM_PORT)
    vm2 = lab.add_vm(hvb, "vm2", MAC2, "10.0.0.2/24", mtu=TUNNEL_VM_MTU, ofport=VM_PORT)
    assert vm1.ofport == VM_PORT
    iface_id = hva.ovs.vsctl("get", "interface", "vm1", "external_ids:iface-id")
    assert iface_id.strip().strip('"') == vm1.iface_id
    hva.add_flows(vxlan_flows(MAC1, MAC2))
    hvb.add_flows(vxlan_flows(MAC2, MAC1))

    flows = hva.dump_flows()
    assert len(flows) == 4
    assert all("duration" not in f and "n_packets" not in f for f in flows)
    assert flows == sorted(flows)
    assert_ping_and_transfer(vm1, vm2)
    counted = hva.dump_flows(keep_counters=True)
    assert all("n_packets=" in f for f in counted)
    assert "192.168.100.2" in hva.ovs.appctl("tnl/neigh/show")


def capture_underlay(underlay: Underlay, count: int) -> subprocess.Popen:
    """tcpdump on the underlay switch, returned once it is listening."""
    proc = underlay.netns.popen(
        "tcpdump",
        "-i",
        underlay.bridge,
        "-nn",
        "-e",
        "-l",
        "-c",
        str(count),
        "icmp",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # The first line may be a hint about verbosity; wait for the "listening on" one.
    assert any("listening on" in proc.stderr.readline() for _ in range(3))
    return proc


def test_mac2mac(lab: Lab) -> None:
    hva, hvb = two_hypervisors(lab)
    underlay = lab.add_underlay()
    for hv in (hva, hvb):
        hv.attach_underlay(underlay, mode="br-int", mac=HOST_MAC[hv.name], ofport=UNDERLAY_PORT)
        assert hv.underlay_ofport == UNDERLAY_PORT
        assert hv.underlay_mac == HOST_MAC[hv.name]
    vm1 = lab.add_vm(hva, "vm1", MAC1, "10.0.0.1/24", ofport=VM_PORT)
    vm2 = lab.add_vm(hvb, "vm2", MAC2, "10.0.0.2/24", ofport=VM_PORT)
    hva.add_flows(mac2mac_flows(hva, hvb, vm1, vm2))
    hvb.add_flows(mac2mac_flows(hvb, hva, vm2, vm1))

    capture = capture_underlay(underlay, count=2)
    assert_ping_and_transfer(vm1, vm2)
    seen, _ = capture.communicate(timeout=10)
    # On the wire only the hosts' MACs appear, never the VMs'.
    assert f"{HOST_MAC['hva']} > {HOST_MAC['hvb']}" in seen, seen
    assert MAC1 not in seen and MAC2 not in seen, seen


def test_vswitchd_restart_loses_flows_keeps_ports(lab: Lab) -> None:
    hv = lab.add_hypervisor("hv1", 1)
    lab.add_vm(hv, "vm1", MAC1, "10.0.0.1/24", ofport=VM_PORT)
    hv.add_flows(["priority=10,in_port=1,actions=drop"])
    old_pid = hv.ovs.pid("ovs-vswitchd")
    hv.ovs.restart_vswitchd()
    assert hv.ovs.pid("ovs-vswitchd") not in (None, old_pid)
    assert hv.dump_flows() == []
    assert hv.ovs.ofport("vm1") == VM_PORT
    dpid = hv.ovs.vsctl("get", "bridge", "br-int", "other_config:datapath-id")
    assert dpid.strip().strip('"') == "0000000000000001"


def lab_leftovers(lab: Lab, pids: list[int]) -> list[str]:
    left = [n for n in list_netns() if n.startswith(lab.prefix)]
    left += [f"pid {p}" for p in pids if is_alive(p)]
    return left + ([str(lab.dir)] if lab.dir.exists() else [])


def build_busy_lab(lab: Lab) -> list[int]:
    """A hypervisor, a VM with a running ping and a service: the PIDs to watch."""
    hv = lab.add_hypervisor("hv1", 1)
    vm = lab.add_vm(hv, "vm1", MAC1, "10.0.0.1/24")
    ping = vm.start_ping("10.0.0.9", count=1000)
    service = start_service(
        "sleeper",
        [sys.executable, "-c", "import time; time.sleep(600)"],
        run_dir=lab.dir / "svc",
        env={},
        netns=hv.netns,
    )
    return [hv.ovs.pid("ovs-vswitchd"), hv.ovs.pid("ovsdb-server"), ping.pid, service.pid]


def test_close_removes_everything_even_after_an_error() -> None:
    lab = Lab()
    pids: list[int] = []
    with pytest.raises(ValueError, match="longer than 15"), lab:
        pids = build_busy_lab(lab)
        assert all(pids)
        lab.add_vm(lab.hypervisors["hv1"], "a-much-too-long-name", MAC2, "10.0.0.2/24")
    assert lab_leftovers(lab, pids) == []


def test_cleanup_stale_after_a_crash() -> None:
    lab = Lab()
    pids = build_busy_lab(lab)
    # As if the test process had died: nothing ran lab.close().
    removed = cleanup_stale(lab.prefix)
    assert any(r.startswith("netns") for r in removed) and any("sleeper" in r for r in removed)
    assert lab_leftovers(lab, pids) == []
    lab.close()  # closing after a cleanup finds nothing left and does not fail


# Stand-ins for vnmgr and vna, to prove the cross-namespace messaging of services.py.
FAKE_VNMGR = """
import os, zmq
ctx = zmq.Context()
pub, rep = ctx.socket(zmq.PUB), ctx.socket(zmq.REP)
pub.bind(os.environ["VNET_MESSAGING_PUB_ENDPOINT"])
rep.bind(os.environ["VNET_MESSAGING_RPC_ENDPOINT"])
while True:
    request = rep.recv()
    rep.send(b"hello " + request)
    for _ in range(50):
        pub.send(b"event for " + request)
"""
FAKE_VNA = """
import os, socket, zmq
ctx = zmq.Context()
sub, req = ctx.socket(zmq.SUB), ctx.socket(zmq.REQ)
sub.setsockopt(zmq.SUBSCRIBE, b"")
sub.connect(os.environ["VNET_MESSAGING_PUB_ENDPOINT"])
req.connect(os.environ["VNET_MESSAGING_RPC_ENDPOINT"])
listener = socket.create_server(("127.0.0.1", int(os.environ["VNET_VNA_OF_PORT"])))
req.send(os.environ["VNET_VNA_NODE_ID"].encode())
print(req.recv().decode(), "/", sub.recv().decode(), flush=True)
switch, _ = listener.accept()
print("switch connected", flush=True)
switch.recv(1 << 16)  # the switch's OpenFlow hello; then hold the connection open
switch.recv(1 << 16)
"""


def test_services_reach_vnmgr_from_a_hypervisor_namespace(lab: Lab) -> None:
    """A vna-like process inside a hypervisor namespace talks to a vnmgr-like process in
    the root namespace over the ipc:// endpoints, and the bridge connects to it."""
    from lab.services import TCP_ESTABLISHED, Services, tcp_sockets

    hv = lab.add_hypervisor("hv1", 1)
    services = Services(lab, "sqlite://")
    vnmgr = start_service(
        "vnmgr",
        [sys.executable, "-c", FAKE_VNMGR],
        run_dir=services.run_dir,
        env=services.common_env("vnmgr"),
    )
    lab.on_close(vnmgr.stop)
    rpc_sock = services.run_dir / "zmq" / "rpc.sock"
    vnmgr.wait_ready(rpc_sock.exists, 10, "rpc socket")
    env = {**services.common_env("vna"), "VNET_VNA_NODE_ID": "node1", "VNET_VNA_OF_PORT": "6633"}
    vna = start_service(
        "vna", [sys.executable, "-c", FAKE_VNA], run_dir=services.run_dir, env=env, netns=hv.netns
    )
    lab.on_close(vna.stop)
    # `ip netns exec` enters the namespace before exec'ing, keeping the pid: on a busy
    # machine the pid can be seen a moment before it is in the namespace
    vna.wait_ready(lambda: vna.pid in hv.netns.pids(), 10, "the vna in the hypervisor netns")
    hv.set_controller("tcp:127.0.0.1:6633")
    vna.wait_ready(lambda: "switch connected" in vna.log_text(), 15, "the switch")
    assert "hello node1 / event for node1" in vna.log_text()
    assert tcp_sockets(vna.pid, 6633, TCP_ESTABLISHED) >= 1
    assert tcp_sockets(vnmgr.pid, 6633) == 0  # the root namespace has no such listener

    vna.kill9()
    assert vna.returncode == -9 and not vna.pidfile.exists()
    assert vnmgr.stop() == -15
