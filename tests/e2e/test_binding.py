"""Port binding by the agents, with real ports and packets on both transports: a vif is
bound where its port appears (OpenVNet datasets create VM interfaces without an owner),
refused off its owner, unreachable while bound nowhere, kept by the first of two ports,
and moved by a migration while peers keep pinging (the loss window is printed; the
figure lives in docs/performance.md, not in an assertion).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from lab import Lab
from lab.cloud import Cloud
from lab.hosts import TUNNEL_VM_MTU, Vm

TRANSPORTS = ["tunnel", "mac2mac"]
INTERVAL = 0.05


@pytest.fixture(scope="module", params=TRANSPORTS)
def cloud(request: pytest.FixtureRequest, e2e_environment: None) -> Iterator[Cloud]:
    with Lab().logs_kept_on_failure(f"binding-{request.param}") as lab:
        c = Cloud(lab, transport=request.param).start()
        c.add_two_routed_networks(("h1", "h2"))
        c.add_vm("h1", "vm1", "nw-a", "10.1.0.11")
        c.add_vm("h2", "vm2", "nw-a", "10.1.0.12")
        c.add_vm("h2", "vm3", "nw-b", "10.2.0.13")
        c.wait_ping("vm1", "10.1.0.12", timeout=15)
        yield c


def free_interface(c: Cloud, name: str, ip: str, mac: str, **extra: str) -> None:
    """An interface as OpenVNet's datasets write it: no owner, no port name."""
    c.api.post("interfaces", uuid=f"if-{name}", mode="vif", network_uuid="nw-a",
               mac_address=mac, ipv4_address=ip, **extra)


def plug(c: Cloud, host: str, name: str, ip: str, mac: str, iface: str | None = None) -> Vm:
    """A VM port on `host` tagged with iface-id `iface` (default if-<name>)."""
    info = c.networks["nw-a"]
    vm = c.lab.add_vm(c.hosts[host].hv, name, mac, f"{ip}/24", gateway=info.gateway,
                      iface_id=iface or f"if-{name}",
                      mtu=TUNNEL_VM_MTU if c.transport == "tunnel" else 1500)
    c.vms[name] = vm
    return vm


def binding(c: Cloud, iface: str) -> dict:
    return c.api.get(f"interfaces/{iface}")["binding"]


def wait_binding(c: Cloud, iface: str, want: str | None, timeout: float = 10.0) -> dict:
    """Until the interface is bound on datapath `want` (None: unbound)."""
    deadline = time.monotonic() + timeout
    while True:
        b = binding(c, iface)
        if b["datapath_uuid"] == want:
            return b
        assert time.monotonic() < deadline, f"{iface} binding is {b}, wanted {want}"
        time.sleep(0.1)


def flows_naming(c: Cloud, host: str, text: str) -> list[str]:
    return [f for f in c.flows(host) if text in f]


def test_a_vif_without_owner_is_bound_where_its_port_appears(cloud: Cloud) -> None:
    c = cloud
    free_interface(c, "free", "10.1.0.21", "10:54:ff:00:aa:21")
    assert binding(c, "if-free")["state"] == "unbound"
    plug(c, "h2", "free", "10.1.0.21", "10:54:ff:00:aa:21")
    bound = wait_binding(c, "if-free", c.hosts["h2"].datapath_uuid)
    assert (bound["state"], bound["port_name"]) == ("bound", "free")
    c.wait_ping("vm1", "10.1.0.21")  # from the other host
    c.wait_ping("vm3", "10.1.0.21")  # routed, from the same host
    c.wait_ping("free", "10.1.0.11")


def test_a_vif_bound_nowhere_is_unreachable_not_black_holed(cloud: Cloud) -> None:
    c = cloud
    free_interface(c, "ghost", "10.1.0.22", "10:54:ff:00:aa:22")
    for host in ("h1", "h2"):
        assert not flows_naming(c, host, "10.1.0.22"), "no ARP answer, no ARP resolution"
    c.vms["vm1"].flush_neighbors()
    result = c.vms["vm1"].ping("10.1.0.22", count=1, wait=1)
    assert result.received == 0
    # unanswered ARP: the kernel knows the address is not there (no lladdr)
    neigh = c.vms["vm1"].run("ip", "neigh", "show", "10.1.0.22").stdout
    assert "lladdr" not in neigh, neigh
    plug(c, "h1", "ghost", "10.1.0.22", "10:54:ff:00:aa:22")
    wait_binding(c, "if-ghost", c.hosts["h1"].datapath_uuid)
    c.wait_ping("vm2", "10.1.0.22")


def test_a_port_off_the_owner_is_refused_and_reported(cloud: Cloud) -> None:
    c = cloud
    free_interface(c, "pinned", "10.1.0.23", "10:54:ff:00:aa:23",
                   owner_datapath_uuid=c.hosts["h1"].datapath_uuid)
    plug(c, "h2", "pinned", "10.1.0.23", "10:54:ff:00:aa:23")
    deadline = time.monotonic() + 10
    while not (claims := binding(c, "if-pinned")["claims"]):
        assert time.monotonic() < deadline, "the refused claim was never reported"
        time.sleep(0.1)
    assert claims[0]["state"] == "refused" and claims[0]["datapath_uuid"] == "dp-h2"
    assert binding(c, "if-pinned")["state"] == "unbound"
    assert not flows_naming(c, "h2", "10:54:ff:00:aa:23"), "a refused port is not classified"
    assert c.vms["vm2"].ping("10.1.0.23", count=1, wait=0.5).received == 0


def test_two_ports_of_one_interface_on_a_bridge_the_first_keeps_it(cloud: Cloud) -> None:
    c = cloud
    free_interface(c, "twin", "10.1.0.24", "10:54:ff:00:aa:24")
    first = plug(c, "h1", "twin", "10.1.0.24", "10:54:ff:00:aa:24")
    wait_binding(c, "if-twin", c.hosts["h1"].datapath_uuid)
    plug(c, "h1", "twin2", "10.1.0.24", "10:54:ff:00:aa:24", iface="if-twin")
    deadline = time.monotonic() + 10
    while not (b := binding(c, "if-twin"))["detail"]:
        assert time.monotonic() < deadline, "the ignored port was never reported"
        time.sleep(0.1)
    assert b["port_name"] == "twin" and "twin2" in b["detail"]
    ports = {line.split("in_port=")[1].split(",")[0] for line in c.flows("h1")
             if "dl_src=10:54:ff:00:aa:24" in line and "in_port=" in line}
    assert ports == {str(first.ofport)}, "never two ports classified for one interface"
    c.wait_ping("vm2", "10.1.0.24")
    # when its port goes away, the other port takes over
    c.hosts["h1"].hv.ovs.del_port(c.hosts["h1"].hv.bridge, "twin")
    deadline = time.monotonic() + 10
    while binding(c, "if-twin")["port_name"] != "twin2":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    c.wait_ping("vm2", "10.1.0.24")


def loss_window(seqs: list[int], after: int) -> float:
    """Longest run of lost replies (seconds) among the echo sequence numbers after `after`."""
    got = sorted(s for s in seqs if s >= after)
    gaps = [b - a - 1 for a, b in zip(got, got[1:], strict=False)]
    return max(gaps, default=0) * INTERVAL


def test_migration_moves_the_binding_and_traffic_resumes(cloud: Cloud) -> None:
    c = cloud
    free_interface(c, "mig", "10.1.0.25", "10:54:ff:00:aa:25")
    plug(c, "h1", "mig", "10.1.0.25", "10:54:ff:00:aa:25")
    wait_binding(c, "if-mig", c.hosts["h1"].datapath_uuid)
    c.wait_ping("vm2", "10.1.0.25")
    c.wait_ping("vm3", "10.1.0.25")
    # the destination's port appears first (standby), then the source's goes away
    plug(c, "h2", "mig2", "10.1.0.25", "10:54:ff:00:aa:25", iface="if-mig")
    deadline = time.monotonic() + 10
    while not binding(c, "if-mig")["claims"]:
        assert time.monotonic() < deadline, "the standby claim was never reported"
        time.sleep(0.1)
    assert binding(c, "if-mig")["claims"][0]["state"] == "standby"
    count = int(4.0 / INTERVAL)
    peer = c.vms["vm2"].start_ping("10.1.0.25", count=count, interval=INTERVAL, wait=0.5)
    routed = c.vms["vm3"].start_ping("10.1.0.25", count=count, interval=INTERVAL, wait=0.5)
    time.sleep(1.0)
    c.hosts["h1"].hv.ovs.del_port(c.hosts["h1"].hv.bridge, "mig")
    moved_at = int(1.0 / INTERVAL)
    same_net, across = peer.result(timeout=30), routed.result(timeout=30)
    wait_binding(c, "if-mig", c.hosts["h2"].datapath_uuid)
    for label, result in (("same network", same_net), ("routed", across)):
        late = [s for s in result.seqs if s > moved_at + 10]
        assert late, f"{label}: traffic did not resume after the migration: {result.seqs}"
        print(f"[{c.transport}] migration loss window ({label}): "
              f"{loss_window(result.seqs, 1):.2f} s, {result.received}/{count} replies")


def wait_flows(c: Cloud, host: str, text: str, present: bool, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while bool(flows_naming(c, host, text)) != present:
        assert time.monotonic() < deadline, f"{host}: flows naming {text} present={not present}"
        time.sleep(0.1)


def test_a_host_holds_a_network_only_while_a_vm_of_it_is_there(cloud: Cloud) -> None:
    """Slices (docs/model-slice.md): h3 has no VM, so vnmgr sends it nothing of nw-a or
    nw-b and its switch holds no flow of their VMs.  A VM port plugged there before its
    interface exists (watched by iface-id) is claimed, bound, and brings the network
    and what its router reaches: pings work at once, in both directions and routed.
    When the interface goes, so do the flows."""
    c = cloud
    c.add_host("h3")
    vm1, vm3 = c.vms["vm1"], c.vms["vm3"]
    wait_flows(c, "h3", "priority=", present=True)  # its vna synced (datapath-wide flows)
    time.sleep(1.0)
    assert not flows_naming(c, "h3", vm1.mac) and not flows_naming(c, "h3", vm3.mac)
    plug(c, "h3", "late", "10.1.0.31", "10:54:ff:00:aa:31", iface="if-late")
    free_interface(c, "late", "10.1.0.31", "10:54:ff:00:aa:31")
    wait_binding(c, "if-late", c.hosts["h3"].datapath_uuid)
    c.wait_ping("late", vm1.ip)  # same network, h3 -> h1
    c.wait_ping("late", vm3.ip)  # routed, h3 -> h2
    c.wait_ping("vm1", "10.1.0.31")
    assert flows_naming(c, "h3", vm1.mac) and flows_naming(c, "h3", vm3.mac)
    c.api.delete("interfaces/if-late")
    wait_flows(c, "h3", vm1.mac, present=False)
    wait_flows(c, "h3", vm3.mac, present=False)
    c.wait_ping("vm1", vm3.ip)  # the others never noticed


def test_a_datapath_that_leaves_the_model_and_comes_back_is_synced_again(
        cloud: Cloud) -> None:
    """Its vna keeps running: while no datapath row has its switch's dpid it holds no
    flows; when the row has it again, the vna diffs the switch in full (found by a
    newcomer: it used to keep the near-empty table)."""
    c = cloud
    dp = c.hosts["h2"].datapath_uuid
    dpid = c.api.get(f"datapaths/{dp}")["dpid"]
    c.api.put(f"datapaths/{dp}", dpid="0x0000aaaa000000ff")
    wait_flows(c, "h2", c.vms["vm2"].mac, present=False)
    c.api.put(f"datapaths/{dp}", dpid=dpid)
    wait_flows(c, "h2", c.vms["vm2"].mac, present=True)
    c.wait_ping("vm1", c.vms["vm2"].ip)
    c.wait_ping("vm3", c.vms["vm1"].ip)
