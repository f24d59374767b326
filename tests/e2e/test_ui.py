"""The topology page (`GET /ui/`) in a real browser: Debian's headless Chromium driven by
playwright, against the demo's world (lab.demo.build: real vnas on real Open vSwitch).

It draws every datapath (connected: its vna reported so), network, router with its
ports and VM inside the datapath it is bound to; it follows a model change by itself;
a `vnctl trace --ui` address highlights that path; a typed token is sent as a bearer
token; and a screenshot comes out as a real PNG.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from playwright.sync_api import Page, sync_playwright

from lab import Lab
from lab.cloud import Cloud
from lab.demo import VMS, build
from vnctl.cli import cli

CHROMIUM = "/usr/bin/chromium"  # Debian's package (scripts/setup.sh); never downloaded
NODES = """() => Object.fromEntries(window.vnetUi.cy.nodes().map(
    n => [n.id(), [n.data('kind'), n.parent().length ? n.parent().id() : null,
                   n.data('connected') || null, n.hasClass('trace')]]))"""


@pytest.fixture(scope="module")
def cloud(e2e_environment: None) -> Iterator[Cloud]:
    with Lab().logs_kept_on_failure("ui") as lab:
        c = build(Cloud(lab).start())
        c.wait_ping("vm1", "10.102.0.14", timeout=15)
        yield c


@pytest.fixture(scope="module")
def page(cloud: Cloud) -> Iterator[Page]:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} missing: run scripts/setup.sh"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            tab = browser.new_page(viewport={"width": 1200, "height": 800})
            tab.goto(f"{cloud.services.webapi_url}/ui/")
            tab.wait_for_function("() => window.vnetUi && window.vnetUi.ready", timeout=15000)
            yield tab
        finally:
            browser.close()


def nodes(page: Page) -> dict[str, list]:
    return page.evaluate(NODES)


def test_the_demo_world_is_drawn(cloud: Cloud, page: Page) -> None:
    # both vnas have reported their switch connected by the time the page polls again
    page.wait_for_function("""() => window.vnetUi.cy.nodes("[kind='datapath']")
                               .every(n => n.data('connected') === 'yes')""", timeout=10000)
    drawn = nodes(page)
    kinds: dict[str, set[str]] = {}
    for uuid, (kind, _parent, _connected, _traced) in drawn.items():
        kinds.setdefault(kind, set()).add(uuid)
    assert kinds["datapath"] == {"dp-h1", "dp-h2"}
    assert {"nw-demo1", "nw-demo2"} <= kinds["network"]
    assert kinds["router"] == {"rl-demo"}
    assert kinds["port"] == {"if-demop1", "if-demop2"}
    assert kinds["vif"] == {f"if-{name}" for name, *_ in VMS}
    for name, host, _network, _address in VMS:
        assert drawn[f"if-{name}"][1] == f"dp-{host}", f"{name} not inside its datapath"
    edges = page.evaluate("() => window.vnetUi.cy.edges().map(e => e.id())")
    assert {"if-vm1--nw-demo1", "rl-demo--if-demop1", "if-demop2--nw-demo2"} <= set(edges)


def test_a_screenshot_is_a_png(page: Page, tmp_path: Path) -> None:
    shot = tmp_path / "topology.png"
    page.screenshot(path=str(shot))
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_a_trace_address_highlights_its_path(cloud: Cloud, page: Page) -> None:
    result = CliRunner().invoke(cli, ["--webapi-uri", cloud.services.webapi_url, "trace",
                                      "--from", "if-vm1", "--to", "10.102.0.14", "--ui"])
    assert result.exit_code == 0, result.output
    url = next(line[4:] for line in result.stdout.splitlines() if line.startswith("ui: "))
    uuids = set(json.loads(urllib.parse.unquote(url.split("#trace=", 1)[1]))["uuids"])
    page.goto(url)
    page.wait_for_function("() => window.vnetUi.cy.nodes('.trace').length > 0", timeout=5000)
    lit = {uuid for uuid, (*_, traced) in nodes(page).items() if traced}
    assert lit == uuids & set(nodes(page))
    assert {"if-vm1", "nw-demo1", "if-demop1", "rl-demo", "if-demop2", "nw-demo2", "if-vm4",
            "dp-h1", "dp-h2"} <= lit
    assert "if-vm2" not in lit and "if-vm3" not in lit
    lit_edges = set(page.evaluate("() => window.vnetUi.cy.edges('.trace').map(e => e.id())"))
    # no gap: the router port the packet enters by is lit with its edges
    assert {"if-demop1--nw-demo1", "rl-demo--if-demop1", "rl-demo--if-demop2",
            "if-demop2--nw-demo2", "if-vm4--nw-demo2"} <= lit_edges
    assert "delivered" in page.inner_text("#trace")
    assert page.evaluate("() => window.vnetUi.cy.nodes('.trace-drop').length") == 0
    page.goto(f"{cloud.services.webapi_url}/ui/#")  # no trace: nothing highlighted
    page.wait_for_function("() => window.vnetUi.cy.nodes('.trace').length === 0",
                           timeout=5000)


DROP = """() => window.vnetUi.cy.nodes('.trace-drop').map(n => [n.id(),
    n.style('border-color'), n.style('border-style'), n.style('background-color')])"""


def test_a_dropped_trace_marks_where_it_stopped_not_the_destination(cloud: Cloud,
                                                                       page: Page) -> None:
    """A trace denied by the destination's to-VM filter lights the path up to the
    datapath that dropped it, marks that one red, and leaves the destination unlit."""
    cloud.api.post("security_groups", uuid="sg-uitest", rules="icmp:-1:0.0.0.0/0")
    cloud.api.post("interfaces/if-vm4/security_groups/sg-uitest")
    try:
        result = CliRunner().invoke(cli, [
            "--webapi-uri", cloud.services.webapi_url, "trace", "--from", "if-vm1",
            "--to", "10.102.0.14", "--proto", "tcp", "--dport", "80", "--ui"])
        assert result.exit_code == 3, result.output
        url = next(line[4:] for line in result.stdout.splitlines() if line.startswith("ui: "))
    finally:
        cloud.api.delete("interfaces/if-vm4/security_groups/sg-uitest")
        cloud.api.delete("security_groups/sg-uitest")
    page.goto(url)
    page.wait_for_function("() => window.vnetUi.cy.nodes('.trace-drop').length > 0",
                           timeout=5000)
    lit = {uuid for uuid, (*_, traced) in nodes(page).items() if traced}
    assert {"if-vm1", "nw-demo1", "if-demop1", "rl-demo", "if-demop2", "nw-demo2",
            "dp-h2"} <= lit
    assert "if-vm4" not in lit  # never reached: not painted like a delivered trace's end
    lit_edges = set(page.evaluate("() => window.vnetUi.cy.edges('.trace').map(e => e.id())"))
    assert "if-vm4--nw-demo2" not in lit_edges
    [(drop, border, style, background)] = [[str(v).replace(" ", "") for v in row]
                                           for row in page.evaluate(DROP)]
    assert drop == "dp-h2" and style == "double" and border == "rgb(238,0,0)", border
    assert background == "rgb(255,187,187)"
    assert "dropped at dp-h2" in page.inner_text("#trace")
    page.goto(f"{cloud.services.webapi_url}/ui/#")
    page.wait_for_function("() => window.vnetUi.cy.nodes('.trace, .trace-drop').length === 0",
                           timeout=5000)


def test_the_header_counts_with_plurals(page: Page) -> None:
    # the demo has one router and several of everything else
    page.wait_for_function("() => window.vnetUi.polls > 0", timeout=5000)
    status = page.inner_text("#status")
    assert "2 datapaths, " in status and " 1 router, " in status, status
    assert "routers" not in status


def test_an_unchanged_model_is_not_redrawn(page: Page) -> None:
    redraws, polls = page.evaluate("() => [window.vnetUi.redraws, window.vnetUi.polls]")
    page.wait_for_function(f"() => window.vnetUi.polls >= {polls + 2}", timeout=10000)
    assert page.evaluate("() => window.vnetUi.redraws") == redraws
    assert "unchanged" in page.inner_text("#status")


def test_the_page_follows_model_changes(cloud: Cloud, page: Page) -> None:
    redraws = page.evaluate("() => window.vnetUi.redraws")
    cloud.api.post("interfaces", uuid="if-vm9", mode="vif", network_uuid="nw-demo2",
                   mac_address="10:54:ff:00:00:99", ipv4_address="10.102.0.99")
    try:
        page.wait_for_function("() => window.vnetUi.cy.getElementById('if-vm9').length === 1",
                               timeout=8000)
        assert nodes(page)["if-vm9"][:2] == ["vif", None]  # bound nowhere: no datapath
        assert page.evaluate("() => window.vnetUi.redraws") == redraws + 1
    finally:
        cloud.api.delete("interfaces/if-vm9")
    page.wait_for_function("() => window.vnetUi.cy.getElementById('if-vm9').length === 0",
                           timeout=8000)


def test_a_typed_token_is_sent_as_a_bearer_token(page: Page) -> None:
    page.fill("#token", "s3cret")
    page.click("#token-form button")
    with page.expect_request(lambda r: "/api/1.0/" in r.url, timeout=8000) as request:
        pass
    assert request.value.headers.get("authorization") == "Bearer s3cret"
    assert page.evaluate("() => sessionStorage.getItem('vnet-token')") == "s3cret"
    page.fill("#token", "")  # harmless with auth off, and cleared again
    page.click("#token-form button")
    assert page.evaluate("() => sessionStorage.getItem('vnet-token')") is None
