"""Opt-in pytest plugin: every Flow any unit test builds is encoded by vna.ofwire and
by os-ken, and the bytes must be equal (xid aside).

    PYTHONPATH=tests/unit .venv/bin/python -m pytest tests/unit -q -p wire_check

It wraps Flow.__post_init__ to collect the distinct flows, and checks them at the end
of the session (a failure there fails the run).  tests/unit/test_ofwire.py checks a
fixed set of worlds in every run; this covers whatever the whole suite builds.
"""

from __future__ import annotations

from typing import Any

import pytest
from os_ken.ofproto import ofproto_v1_3, ofproto_v1_3_parser

from vna import ofwire
from vna.flows import Flow
from vna.ofmsg import to_flow_mod

_SEEN: set[Flow] = set()
_original_post_init = Flow.__post_init__


def _collecting_post_init(self: Flow) -> None:
    _original_post_init(self)
    _SEEN.add(self)


Flow.__post_init__ = _collecting_post_init  # type: ignore[method-assign]


class _Datapath:
    ofproto = ofproto_v1_3
    ofproto_parser = ofproto_v1_3_parser
    id = 1

    def set_xid(self, msg: Any) -> None:
        msg.set_xid(0)


def oskn_bytes(flow: Flow) -> bytes:
    msg = to_flow_mod(flow, _Datapath())
    msg.set_xid(0)
    msg.serialize()
    return bytes(msg.buf)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    Flow.__post_init__ = _original_post_init  # type: ignore[method-assign]
    mismatched, unencodable, skipped, bad_values = [], [], 0, 0
    for flow in _SEEN:
        try:
            reference = oskn_bytes(flow)
        except Exception:  # os-ken cannot encode it either (a test of bad input)
            skipped += 1
            continue
        try:
            if ofwire.flow_mod(flow) != reference:
                mismatched.append(flow)
        except ValueError as error:
            # A value that does not fit its field: os-ken truncates it silently, ofwire
            # refuses (a test of bad input); anything else ofwire cannot encode fails.
            if "does not fit" in str(error) or "is not a value of field" in str(error):
                bad_values += 1
            else:
                unencodable.append(flow)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    line = (f"wire_check: {len(_SEEN)} distinct flows, {len(mismatched)} differ from os-ken, "
            f"{len(unencodable)} not encodable, {skipped} that os-ken rejects too, "
            f"{bad_values} with values too big for their field (os-ken truncates, ofwire refuses)")
    if reporter is not None:
        reporter.write_line(line)
        for flow in (mismatched + unencodable)[:10]:
            reporter.write_line(f"  {flow}")
    if mismatched or unencodable:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
