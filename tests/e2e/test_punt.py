"""The packet-in path with a real switch: OVS punts through the vif's meter, the vna
dispatches the packet-in by cookie kind to the feature's handler on its worker queue,
and sends the answer back with a packet-out.

The production punt (fragments to a gateway) has its own e2e test
(test_gateway_fragments.py); here the vna runs with the test-only echo feature
(tests/unit/echo_feature.py: UDP to port 7 is answered from the controller), loaded by
tests/e2e/echo_site/sitecustomize.py through PYTHONPATH - production code is unchanged.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import Lab
from lab.capture import capture
from lab.cloud import Cloud
from tests.e2e.vna_probe import vna_metrics

TESTS = Path(__file__).resolve().parents[1]
ECHO_PYTHONPATH = f"{TESTS / 'e2e' / 'echo_site'}:{TESTS / 'unit'}"
RATE, BURST = 50, 20  # the vna's meter, small so a short blast shows it

# Runs in the VM: send `count` datagrams to ip:7 as fast as possible, then collect the
# echoes for a while; prints {"sent": n, "echoed": [payloads]} as JSON.
ECHO_CLIENT = """
import json, socket, sys, time
ip, count = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
s.bind(("", 5555))
for i in range(count):
    s.sendto(b"hello %d" % i, (ip, 7))
s.settimeout(1.0)
echoed = []
try:
    while True:
        data, peer = s.recvfrom(2048)
        if peer == (ip, 7):
            echoed.append(data.decode())
except socket.timeout:
    pass
print(json.dumps({"sent": count, "echoed": echoed}))
"""


@pytest.fixture(scope="module")
def cloud(e2e_environment: None) -> Iterator[Cloud]:
    with Lab().logs_kept_on_failure("punt") as lab:
        c = Cloud(lab, transport="tunnel").start()
        # Only the vna gets the echo feature (vnmgr and webapi are already running).
        c.services.extra_env.update(PYTHONPATH=ECHO_PYTHONPATH, VNET_VNA_PUNT_METER_RATE=str(RATE),
                                    VNET_VNA_PUNT_METER_BURST=str(BURST))
        c.add_host("h1")
        c.add_network("nw-a", "10.1.0.0/24")
        c.add_vm("h1", "vm1", "nw-a", "10.1.0.11")
        c.add_vm("h1", "vm2", "nw-a", "10.1.0.12")
        c.wait_ping("vm1", "10.1.0.12", timeout=15)
        yield c


def echo(c: Cloud, vm: str, ip: str, count: int) -> dict:
    out = c.vms[vm].run(sys.executable, "-c", ECHO_CLIENT, ip, str(count), timeout=30).stdout
    return json.loads(out)


def test_a_punted_datagram_is_answered_by_the_feature_through_packet_out(cloud: Cloud) -> None:
    # One punting flow per vif, through that vif's meter (meter id = ofport).
    flows = [f for f in cloud.flows("h1") if "tp_dst=7" in f]
    ports = [re.search(r"in_port=(\d+).*meter:(\d+),CONTROLLER", f) for f in flows]
    assert sorted(int(p.group(1)) for p in ports if p and p.group(1) == p.group(2)) == \
        sorted(vm.ofport for vm in cloud.vms.values()), flows
    with capture(cloud.vms["vm2"].netns, "eth0", "udp") as at_vm2:
        result = echo(cloud, "vm1", "10.1.0.12", 1)
    assert result["echoed"] == ["hello 0"]  # answered by the vna, from "10.1.0.12:7"
    assert at_vm2.lines == []  # punted in PUNT: the datagram never reached vm2
    m = vna_metrics(cloud, "h1")
    assert m['vnet_vna_punts_handled_total{feature="echo",node_id="vnah1"}'] >= 1
    assert m['vnet_vna_packet_ins_total{node_id="vnah1",reason="action"}'] >= 1


def test_the_vifs_meter_limits_what_a_vm_can_punt(cloud: Cloud) -> None:
    before = vna_metrics(cloud, "h1")
    result = echo(cloud, "vm1", "10.1.0.12", 1000)
    after = vna_metrics(cloud, "h1")
    handled = 'vnet_vna_punts_handled_total{feature="echo",node_id="vnah1"}'
    answered = after[handled] - before[handled]
    # ~ burst + rate x the blast's duration (well under a second); never all 1000.
    assert BURST // 2 <= len(result["echoed"]) <= answered <= BURST + 3 * RATE, \
        (len(result["echoed"]), answered)
    # The meter saw the datagrams (not all 1000: the sender's own queue drops some) and
    # passed to the controller only what the agent answered.
    ofport = cloud.vms["vm1"].ofport
    stats = cloud.hosts["h1"].hv.ovs.ofctl("meter-stats", "br-int", f"meter={ofport}")
    seen = int(re.search(r"packet_in_count:(\d+)", stats).group(1))
    dropped = int(re.search(r"0: packet_count:(\d+)", stats).group(1))
    assert seen - dropped <= BURST + 3 * RATE + 1 < seen, stats
