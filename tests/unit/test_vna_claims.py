"""Which bridge ports are which interfaces (vna.claims), without a switch."""

from __future__ import annotations

import logging
import time

from vna_kit import ModelBuilder, two_hosts

from vna.claim_reporter import ClaimReporter
from vna.claims import Claim, PortClaims
from vna.ovsdb import OvsPort
from vna.view import LocalBinding, View


def world() -> ModelBuilder:
    m = two_hosts()
    net = m.network("a", "10.1.0.0/24")
    m.vif("mine", "dp-1", net, "10.1.0.10", bound=False)
    m.vif("theirs", "dp-2", net, "10.1.0.11", bound=False)
    free = m.interface("free", "vif", None)
    m.ip(free, net, "10.1.0.12", m.mac(free))
    return m


def port(name: str, ofport: int, iface_id: str | None = None, kind: str = "") -> OvsPort:
    return OvsPort(name=name, ofport=ofport, iface_id=iface_id, type=kind)


def update(claims: PortClaims, m: ModelBuilder, *ports: OvsPort):
    view = View(m.snapshot(), LocalBinding("dp-1"))
    return claims.update(view, "dp-1", {p.name: p for p in ports})


def test_ports_are_matched_by_iface_id_else_by_name_owned_here_or_by_nobody():
    m = world()
    claims, owned = update(PortClaims(), m, port("tap1", 1, "if-free"), port("mine", 2),
                           port("theirs", 3), port("h1", 4))
    assert {u: c.ofport for u, c in claims.items()} == {"if-free": 1, "if-mine": 2}
    assert owned == {"if-h1": 4}  # the host interface, bound by its owner


def test_a_second_port_of_one_interface_is_ignored_and_the_first_keeps_it(caplog):
    m, claims = world(), PortClaims()
    first, second = port("b", 7, "if-free"), port("a", 3, "if-free")
    got, _ = update(claims, m, first)
    assert got["if-free"].port_name == "b"
    with caplog.at_level(logging.WARNING, logger="vna.claims"):
        for _ in range(2):
            got, _ = update(claims, m, first, second)
    assert (got["if-free"].port_name, got["if-free"].detail) == ("b", "also on port a (ignored)")
    assert len([r for r in caplog.records if "ignored" in r.getMessage()]) == 1  # once
    got, _ = update(claims, m, second)  # its port went away: the other one takes it
    assert (got["if-free"].port_name, got["if-free"].detail) == ("a", None)
    # with no history, the lowest ofport wins
    got, _ = update(PortClaims(), m, first, second)
    assert got["if-free"].port_name == "a"


def test_ports_that_are_no_interface_are_logged_once_and_tunnels_never(caplog):
    m, claims = world(), PortClaims()
    with caplog.at_level(logging.WARNING, logger="vna.claims"):
        for _ in range(2):
            got, owned = update(claims, m, port("stray", 9, "if-nope"),
                                port("vx0", 100, kind="vxlan"))
    assert got == {} and owned == {}
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and "stray" in messages[0]


def test_the_bridge_port_and_tunnels_are_never_a_vif():
    m = world()
    for name in ("br-int", "vx0"):
        m.model["interfaces"]["if-free"]["port_name"] = name
        got, _ = update(PortClaims(), m, port("br-int", 0xFFFE, kind="internal"),
                        port("vx0", 100, "if-free", kind="vxlan"))
        assert got == {}, name


class FakeRpc:
    def __init__(self) -> None:
        self.calls: list[dict] = []

    def call(self, op, resource=None, uuid=None, params=None, timeout_ms=None):
        self.calls.append(params)
        return {"bindings": {p["interface_uuid"]: "active" for p in params["ports"]}}


def test_claims_are_reported_again_when_the_model_lost_them():
    rpc = FakeRpc()
    reporter = ClaimReporter(rpc)
    try:
        claims = {"if-a": Claim("a", 3)}
        recorded = {"if-a": {"port_name": "a", "port_number": 3}}
        reporter.offer("dp-1", claims)
        wait_for(lambda: len(rpc.calls) == 1)
        reporter.offer("dp-1", claims, recorded)  # the model has them: nothing to send
        time.sleep(0.2)
        assert len(rpc.calls) == 1
        reporter.offer("dp-1", claims, {})  # e.g. the datapath was deleted and re-created
        wait_for(lambda: len(rpc.calls) == 2)
        assert rpc.calls[-1]["ports"][0]["interface_uuid"] == "if-a"
    finally:
        reporter.stop()


def wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)
