"""vnmgr.liveness: which datapaths are connected, from reports and their absence."""

from __future__ import annotations

from vnmgr.liveness import Liveness


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make() -> tuple[Liveness, Clock]:
    clock = Clock()
    return Liveness(timeout=4.0, stall=1.0, clock=clock), clock


def advance(liveness: Liveness, clock: Clock, seconds: float, step: float = 0.5) -> None:
    """Time passing with vnmgr's loop ticking every `step` seconds."""
    for _ in range(round(seconds / step)):
        clock.now += step
        liveness.tick()


def test_a_report_connects_and_silence_past_the_timeout_disconnects() -> None:
    liveness, clock = make()
    liveness.report("vna1", True, "dp-1")
    assert liveness.changes({"dp-1": False, "dp-2": False}) == {"dp-1": True}
    advance(liveness, clock, 4.0)
    assert liveness.changes({"dp-1": True}) == {}  # 4 s: still within the timeout
    advance(liveness, clock, 0.5)
    assert liveness.changes({"dp-1": True}) == {"dp-1": False}


def test_a_report_without_a_switch_disconnects_at_once() -> None:
    liveness, clock = make()
    advance(liveness, clock, 5.0)
    liveness.report("vna1", False, None)
    assert liveness.changes({"dp-1": True}) == {"dp-1": False}


def test_nothing_is_disconnected_before_the_agents_could_report() -> None:
    liveness, clock = make()
    advance(liveness, clock, 3.5)
    assert liveness.changes({"dp-1": True}) == {}
    advance(liveness, clock, 0.5)
    assert liveness.changes({"dp-1": True}) == {"dp-1": False}


def test_time_vnmgr_spent_blocked_is_not_held_against_the_agents() -> None:
    liveness, clock = make()
    advance(liveness, clock, 5.0)
    liveness.report("vna1", True, "dp-1")
    advance(liveness, clock, 3.0)
    clock.now += 10.0  # one request held the loop for 10 s: no report could be read
    liveness.tick()
    assert liveness.changes({"dp-1": True}) == {}
    advance(liveness, clock, 1.5)
    assert liveness.changes({"dp-1": True}) == {"dp-1": False}


def test_the_latest_report_of_a_node_wins() -> None:
    """A vna whose switch turned out to be another datapath (dpid moved)."""
    liveness, clock = make()
    liveness.report("vna1", True, "dp-1")
    liveness.report("vna1", True, "dp-2")
    assert liveness.live() == {"dp-2"}
