"""DNS answered at the edge (vna.features.dns): real queries built with dnspython, in
real frames (os_ken.lib.packet), run through the desired flows and the handler by
vna_kit.punt_replies."""

from __future__ import annotations

import socket
import threading
import time

import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.reversename
import pytest
import vna_kit as kit
from os_ken.lib.packet import ethernet, ipv4, packet, udp

from vna import dns_model
from vna.actions import IN_PORT, Controller, Meter
from vna.dns_forward import Forwarder
from vna.features import dns as dns_feature
from vna.features.dns import KIND_DNS
from vna.meters import port_meter_id
from vna.pipeline import ETH_IPV4, Table
from vna.punt import PacketOut

VM_PORT, OTHER_PORT = 3, 4
A_IP, VM3_IP, DNS_IP = "10.1.0.10", "10.1.0.13", "10.1.0.53"
CLIENT_PORT = 40000


def world(public_dns: str | None = None, transport: str = "tunnel"
          ) -> tuple[kit.ModelBuilder, kit.Agent]:
    """nw-1 (domain example.test) with vif a on dp-1 and vm3 on dp-2, a dns service at
    10.1.0.53 with records vm3 and a; nw-2 without dns, vif c on dp-1."""
    m = kit.two_hosts()
    nw1, nw2 = m.network("1", "10.1.0.0/24"), m.network("2", "10.2.0.0/24")
    m.model["networks"][nw1]["domain_name"] = "example.test"
    m.vif("a", "dp-1", nw1, A_IP)
    m.vif("vm3", "dp-2", nw1, VM3_IP)
    m.vif("c", "dp-1", nw2, "10.2.0.10")
    dnss = m.dns_server("dns1", nw1, DNS_IP, public_dns)
    m.dns_record(dnss, "vm3", VM3_IP, ttl=30)
    m.dns_record(dnss, "a", A_IP)
    agent = kit.agent_on(m, "1", {"if-a": VM_PORT, "if-c": OTHER_PORT, "if-h1": 50},
                         transport=transport)
    return m, agent


def dns_mac(m: kit.ModelBuilder) -> str:
    return m.mac_of("if-dns1")


def query_frame(m: kit.ModelBuilder, query: dns.message.Message, src: str = A_IP,
                dst: str = DNS_IP, iface: str = "if-a") -> bytes:
    frame = packet.Packet()
    frame.add_protocol(ethernet.ethernet(dst=dns_mac(m), src=m.mac_of(iface),
                                         ethertype=ETH_IPV4))
    frame.add_protocol(ipv4.ipv4(src=src, dst=dst, proto=17, ttl=64))
    frame.add_protocol(udp.udp(src_port=CLIENT_PORT, dst_port=53))
    frame.add_protocol(query.to_wire())
    frame.serialize()
    return bytes(frame.data)


def ask(m: kit.ModelBuilder, agent: kit.Agent, name: str, rdtype: str = "A",
        later=None, **kw) -> list[PacketOut]:
    query = dns.message.make_query(name, rdtype)
    _, replies = kit.punt_replies(agent, query_frame(m, query, **kw), VM_PORT, later=later)
    return replies


def parse(m: kit.ModelBuilder, query_name: str, reply: PacketOut) -> dns.message.Message:
    """Check the frame goes back to the asker from the service, and return its DNS."""
    assert reply.port == VM_PORT
    pkt = packet.Packet(reply.data)
    eth, ip, datagram = (pkt.get_protocol(ethernet.ethernet), pkt.get_protocol(ipv4.ipv4),
                         pkt.get_protocol(udp.udp))
    assert (eth.src, eth.dst) == (dns_mac(m), m.mac_of("if-a"))
    assert (ip.src, ip.dst, ip.proto) == (DNS_IP, A_IP, 17)
    assert (datagram.src_port, datagram.dst_port) == (53, CLIENT_PORT)
    assert datagram.total_length == 8 + len(pkt.protocols[-1])
    response = dns.message.from_wire(bytes(pkt.protocols[-1]))
    assert response.question[0].name.to_text() == dns.name.from_text(query_name).to_text()
    return response


def one(m: kit.ModelBuilder, agent: kit.Agent, name: str, rdtype: str = "A"
        ) -> dns.message.Message:
    replies = ask(m, agent, name, rdtype)
    assert len(replies) == 1
    return parse(m, name, replies[0])


def answers(response: dns.message.Message) -> list[str]:
    return sorted(rd.to_text() for rrset in response.answer for rd in rrset)


# ------------------------------------------------------------------ flows

@pytest.mark.parametrize("transport", ["tunnel", "mac2mac"])
def test_a_local_vif_on_the_network_punts_udp_53_to_the_service_through_its_meter(transport):
    m, agent = world(transport=transport)
    flows = [f for f in agent.desired.flows().values() if f.kind == KIND_DNS]
    assert len(flows) == 1  # vif a only: c's network has no dns, vm3 is remote
    flow = flows[0]
    assert flow.table == Table.PUNT
    match = dict(flow.match)
    assert (match["in_port"], match["ipv4_dst"], match["udp_dst"], match["ip_proto"]) == (
        VM_PORT, DNS_IP, 53, 17)
    assert flow.actions == (Meter(port_meter_id(VM_PORT)), Controller())
    # Other traffic to the service address is not punted.
    query = dns.message.make_query("vm3", "A")
    outcome, _ = kit.punt_replies(agent, query_frame(m, query), VM_PORT)
    assert outcome.punts
    frame = query_frame(m, query, dst="10.1.0.99")
    outcome, replies = kit.punt_replies(agent, frame, VM_PORT)
    assert not outcome.punts and not replies


def test_no_dns_service_no_punt():
    m, agent = world()
    del m.model["network_services"]["ns-dns1"]
    agent.sync(m.snapshot())
    assert not [f for f in agent.desired.flows().values() if f.kind == KIND_DNS]
    assert agent.desired.flows() == agent.full()


# ------------------------------------------------------------------ answers

def test_a_record_by_name_and_by_name_in_the_network_domain():
    m, agent = world()
    for name in ("vm3", "vm3.example.test", "VM3.Example.Test."):
        response = one(m, agent, name)
        assert response.rcode() == dns.rcode.NOERROR
        assert response.flags & dns.flags.AA and response.flags & dns.flags.QR
        assert answers(response) == [VM3_IP]
        assert response.answer[0].ttl == 30


def test_ptr_answers_the_fully_qualified_name():
    m, agent = world()
    name = dns.reversename.from_address(VM3_IP).to_text()
    response = one(m, agent, name, "PTR")
    assert response.rcode() == dns.rcode.NOERROR
    assert answers(response) == ["vm3.example.test."]


def test_ptr_without_domain_answers_the_bare_name():
    m, agent = world()
    m.model["networks"]["nw-1"]["domain_name"] = ""
    agent.sync(m.snapshot())
    response = one(m, agent, dns.reversename.from_address(A_IP).to_text(), "PTR")
    assert answers(response) == ["a."]
    assert answers(one(m, agent, "a")) == [A_IP]
    # ...and the domain's name is no longer one of ours: not known, no upstream
    assert one(m, agent, "a.example.test").rcode() == dns.rcode.REFUSED


def test_known_name_other_type_is_an_empty_noerror():
    m, agent = world()
    for rdtype in ("AAAA", "MX", "TXT"):
        response = one(m, agent, "vm3", rdtype)
        assert response.rcode() == dns.rcode.NOERROR and not response.answer
        assert response.flags & dns.flags.AA


def test_unknown_name_without_upstream_is_refused_at_once():
    m, agent = world()
    response = one(m, agent, "www.example.org")
    assert response.rcode() == dns.rcode.REFUSED and not response.answer
    assert one(m, agent, dns.reversename.from_address("10.1.0.99").to_text(),
               "PTR").rcode() == dns.rcode.REFUSED


def test_record_changes_apply_to_the_next_query():
    m, agent = world()
    assert answers(one(m, agent, "vm3")) == [VM3_IP]
    m.model["dns_records"]["dnsr-dns1-vm3-10.1.0.13"]["ipv4_address"] = "10.1.0.77"
    m.dns_record("dnss-dns1", "vm4", "10.1.0.14")
    m.dns_record("dnss-dns1", "vm3", "10.1.0.78")  # a second address for vm3
    agent.sync(m.snapshot())
    assert answers(one(m, agent, "vm3")) == ["10.1.0.77", "10.1.0.78"]
    assert answers(one(m, agent, "vm4.example.test")) == ["10.1.0.14"]
    for uuid in [u for u, r in m.model["dns_records"].items() if r["name"] == "vm3"]:
        m.delete("dns_records", uuid)
    agent.sync(m.snapshot())
    assert one(m, agent, "vm3").rcode() == dns.rcode.REFUSED


def test_spoofed_source_or_foreign_mac_gets_nothing():
    m, agent = world()
    assert ask(m, agent, "vm3", src="10.1.0.200") == []
    # vif c is on nw-2, which has no dns service: its query is not even punted
    query = dns.message.make_query("vm3", "A")
    outcome, replies = kit.punt_replies(agent, query_frame(m, query, src="10.2.0.10",
                                                           iface="if-c"), OTHER_PORT)
    assert not outcome.punts and not replies


def test_garbage_and_responses_get_no_answer_other_opcodes_notimp():
    m, agent = world()
    frame = query_frame(m, dns.message.make_query("vm3", "A"))
    garbage = frame[:-20] + b"\xff" * 20
    _, replies = kit.punt_replies(agent, garbage[:42] + b"\x00\x01", VM_PORT)
    assert replies == []
    response = dns.message.make_response(dns.message.make_query("vm3", "A"))
    _, replies = kit.punt_replies(agent, query_frame(m, response), VM_PORT)
    assert replies == []
    update = dns.message.make_query("vm3", "A")
    update.set_opcode(dns.opcode.STATUS)
    _, replies = kit.punt_replies(agent, query_frame(m, update), VM_PORT)
    assert parse(m, "vm3", replies[0]).rcode() == dns.rcode.NOTIMP


# ------------------------------------------------------------------ forwarding

class FakeUpstream:
    """A resolver on 127.0.0.1 answering every A query with 192.0.2.7 (or silent)."""

    def __init__(self, silent: bool = False) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.silent = silent
        self.seen: list[dns.message.Message] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            query = dns.message.from_wire(data)
            self.seen.append(query)
            if self.silent:
                continue
            response = dns.message.make_response(query)
            response.flags |= dns.flags.RA
            response.answer.append(dns.rrset.from_text(query.question[0].name, 300, "IN", "A",
                                                       "192.0.2.7"))
            self.sock.sendto(response.to_wire(), peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def upstream(monkeypatch: pytest.MonkeyPatch):
    fake = FakeUpstream()
    monkeypatch.setattr(dns_model, "UPSTREAM_PORT", fake.port)
    yield fake
    fake.close()


class Later(list):
    """PacketIn.later as the agent gives it: IN_PORT is the query's port."""

    def __call__(self, out: PacketOut) -> None:
        self.append(PacketOut(VM_PORT if out.port == IN_PORT else out.port, out.data))


def wait_for(items: list, count: int = 1, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while len(items) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(items) >= count


def test_other_names_are_forwarded_to_the_upstream_and_relayed(upstream):
    m, agent = world(public_dns="127.0.0.1")
    later = Later()
    query = dns.message.make_query("www.example.org", "A")
    _, replies = kit.punt_replies(agent, query_frame(m, query), VM_PORT, later=later)
    assert replies == []  # the worker does not wait: the answer comes later
    wait_for(later)
    response = parse(m, "www.example.org", later[0])
    assert query.is_response(response) and response.id == query.id
    assert answers(response) == ["192.0.2.7"]
    assert upstream.seen[0].id != query.id  # sent upstream under a fresh id
    # known names are still answered here, not upstream
    assert answers(one(m, agent, "vm3")) == [VM3_IP] and len(upstream.seen) == 1


def test_a_silent_upstream_gives_servfail_and_the_next_one_is_tried(monkeypatch):
    silent, speaking = FakeUpstream(silent=True), FakeUpstream()
    try:
        monkeypatch.setattr(dns_feature, "FORWARDER", Forwarder(timeout=0.3))
        # both fakes listen on 127.0.0.1; their ports differ, so point the model at
        # one address and the port at each in turn
        monkeypatch.setattr(dns_model, "UPSTREAM_PORT", silent.port)
        m, agent = world(public_dns="127.0.0.1")
        later = Later()
        ask(m, agent, "nowhere.example.org", later=later)
        wait_for(later)
        assert parse(m, "nowhere.example.org", later[0]).rcode() == dns.rcode.SERVFAIL
        monkeypatch.setattr(dns_model, "upstreams", lambda config: [
            ("127.0.0.1", silent.port), ("127.0.0.1", speaking.port)])
        later.clear()
        ask(m, agent, "somewhere.example.org", later=later)
        wait_for(later)
        response = parse(m, "somewhere.example.org", later[0])
        assert answers(response) == ["192.0.2.7"]
    finally:
        silent.close()
        speaking.close()


def test_forwarding_without_a_deferred_path_or_over_the_limit_is_servfail_at_once(
        upstream, monkeypatch):
    m, agent = world(public_dns="127.0.0.1")
    assert parse(m, "www.example.org", ask(m, agent, "www.example.org")[0]
                 ).rcode() == dns.rcode.SERVFAIL
    monkeypatch.setattr(dns_feature, "FORWARDER", Forwarder(max_in_flight=0))
    replies = ask(m, agent, "www.example.org", later=lambda out: None)
    assert parse(m, "www.example.org", replies[0]).rcode() == dns.rcode.SERVFAIL


def test_public_dns_parsing():
    assert dns_model.upstreams({"public_dns": "8.8.8.8, 1.1.1.1,bogus,"}) == [
        ("8.8.8.8", 53), ("1.1.1.1", 53)]
    assert dns_model.upstreams({"public_dns": None}) == []
    assert dns_model.upstreams(None) == []


# ------------------------------------------------------------------ dependencies

def test_adding_and_moving_the_service_recomputes_the_vifs_of_its_network():
    m = kit.two_hosts()
    nw1 = m.network("1", "10.1.0.0/24")
    m.vif("a", "dp-1", nw1, A_IP)
    iface = m.interface("dns1", "simulated", None)
    agent = kit.agent_on(m, "1", {"if-a": VM_PORT, "if-h1": 50})
    m.ip(iface, nw1, DNS_IP, m.mac(iface))
    agent.sync(m.snapshot())
    m.network_service(iface, "dns", "dns1")
    agent.sync(m.snapshot())
    assert agent.desired.flows() == agent.full()
    assert [f for f in agent.desired.flows().values() if f.kind == KIND_DNS]
    lease = next(u for u, r in m.model["ip_leases"].items() if r["interface_uuid"] == iface)
    m.model["ip_leases"][lease]["ipv4_address"] = "10.1.0.54"
    agent.sync(m.snapshot())
    assert agent.desired.flows() == agent.full()
    m.model["network_services"]["ns-dns1"]["type"] = "dhcp"
    agent.sync(m.snapshot())
    assert agent.desired.flows() == agent.full()
    assert not [f for f in agent.desired.flows().values() if f.kind == KIND_DNS]


# ------------------------------------------------------------------ the agent's part

class RecordingConnection:
    def __init__(self) -> None:
        self.sent: list[tuple[int, bytes]] = []

    def packet_out(self, port: int, data: bytes) -> None:
        self.sent.append((port, data))


def test_the_agent_sends_deferred_answers_from_its_worker(monkeypatch):
    """PacketIn.later (any thread) queues the packet for the worker, which sends it out
    of the packet-in's port - unless the switch connection changed meanwhile."""
    from vna import agent as agent_module
    from vna.punt import PacketIn

    handed: list = []

    def fake_dispatch(view, packet_in, stats=None):
        handed.append(packet_in.later)
        return [PacketOut(7, b"now")]

    monkeypatch.setattr(agent_module, "dispatch", fake_dispatch)
    agent = agent_module.Agent("n", "tunnel", None)
    connection = RecordingConnection()
    agent.connection, agent.view = connection, object()
    agent.packet_in(connection, PacketIn(1, 5, "action", VM_PORT, b"q"))
    kind, payload = agent.queue.get_nowait()
    agent._on_packet_in(payload)
    assert connection.sent == [(7, b"now")]
    handed[0](PacketOut(IN_PORT, b"later"))  # e.g. from a resolver thread
    kind, payload = agent.queue.get_nowait()
    getattr(agent, f"_on_{kind}")(payload)
    assert connection.sent[-1] == (VM_PORT, b"later")
    agent.connection = RecordingConnection()  # reconnected: the old port may be stale
    handed[0](PacketOut(IN_PORT, b"stale"))
    kind, payload = agent.queue.get_nowait()
    getattr(agent, f"_on_{kind}")(payload)
    assert agent.connection.sent == [] and connection.sent[-1] == (VM_PORT, b"later")
