"""Bearer tokens (`[webapi] auth = token`) on real vnmgr and vnet-webapi processes, driven
with requests and with vnctl; and the settings webapi refuses to start with."""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner, Result
from openapi_spec_validator import validate
from prometheus_client.parser import text_string_to_metric_families

from lab.hosts import Lab
from lab.services import ServiceHandle, Services, find_program, free_tcp_port
from vnctl.cli import cli

from .support import unique

ADMIN = "adm-" + "7f3a9c1e5b2d4f6a8c0e"
READER = "rdr-" + "0b1d3f5a7c9e2a4c6e8a"
TOKENS = f"# wakame-vnet API tokens\n\n{ADMIN} admin\n{READER}   reader\n"


@dataclass
class Stack:
    services: Services
    webapi: ServiceHandle

    @property
    def url(self) -> str:
        return self.services.webapi_url + "/api/1.0"

    def call(self, method: str, path: str, token: str | None = None,
             header: str | None = None, **kwargs: Any) -> requests.Response:
        """`token` sends `Bearer <token>`; `header` an Authorization header as is."""
        headers = {}
        if header is not None:
            headers["Authorization"] = header
        elif token is not None:
            headers["Authorization"] = f"Bearer {token}"
        url = (self.services.webapi_url if path.startswith("/metrics") else self.url) + path
        return requests.request(method, url, headers=headers, timeout=30, **kwargs)

    def snapshot(self) -> dict[str, Any]:
        return self.services.rpc().call("snapshot")


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Lab() as lab:
        tokens = lab.dir / "tokens"
        tokens.write_text(TOKENS)
        tokens.chmod(0o600)
        services = Services(lab, extra_env={"VNET_MESSAGING_RPC_TIMEOUT_MS": "3000"})
        services.start_vnmgr()
        webapi = services.start_webapi(VNET_WEBAPI_AUTH="token",
                                       VNET_WEBAPI_TOKENS_FILE=str(tokens))
        yield Stack(services, webapi)


@pytest.fixture(scope="module")
def network(stack: Stack) -> dict[str, Any]:
    response = stack.call("POST", "/networks", ADMIN, data={
        "uuid": unique("nw"), "ipv4_network": "10.77.0.0", "ipv4_prefix": 24})
    assert response.status_code == 201, response.text
    return response.json()


def refused(response: requests.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["error"] == error and response.json()["field"] == "Authorization"
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    else:
        assert "WWW-Authenticate" not in response.headers


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/networks"), ("POST", "/networks"), ("GET", "/openapi.json"),
    ("GET", "/metrics"), ("GET", "/no-such-resource"), ("DELETE", "/networks/nw-x"),
])
def test_no_token_is_401(stack: Stack, method: str, path: str) -> None:
    before = stack.snapshot()
    refused(stack.call(method, path), 401, "missing_token")
    assert stack.snapshot() == before


@pytest.mark.parametrize("header", [
    "Bearer wrong-token", f"Bearer {ADMIN[:-1]}", f"Bearer {ADMIN}x", f"Bearer {READER[1:]}",
    "Bearer tökén",
], ids=["wrong", "prefix", "longer", "suffix", "non-ascii"])
def test_wrong_token_is_401(stack: Stack, header: str) -> None:
    response = stack.call("POST", "/networks", header=header.encode().decode("latin-1"),
                          data={"uuid": unique("nw")})
    refused(response, 401, "invalid_token")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


@pytest.mark.parametrize("header", [
    ADMIN, f"Token {ADMIN}", "Basic " + base64.b64encode(f"admin:{ADMIN}".encode()).decode(),
    "Bearer", "Bearer ", f"Bearer {ADMIN} {ADMIN}", "",
], ids=["no-scheme", "other-scheme", "basic", "no-token", "blank-token", "two-tokens",
        "empty"])
def test_malformed_header_is_401(stack: Stack, header: str) -> None:
    before = stack.snapshot()
    refused(stack.call("POST", "/networks", header=header, data={"uuid": unique("nw")}),
            401, "invalid_token")
    assert stack.snapshot() == before


def test_health_needs_no_token(stack: Stack) -> None:
    response = stack.call("GET", "/health")
    assert response.status_code == 200 and response.json()["webapi"] == "ok"


def test_the_topology_page_loads_without_a_token_but_its_data_needs_one(stack: Stack) -> None:
    """A browser fetches the page's files with no Authorization header; the page then
    sends the token it is given with each API call (webapi/static/ui.js)."""
    base = stack.services.webapi_url
    for path in ("/ui/", "/ui/ui.js", "/ui/ui.css", "/ui/cytoscape.min.js"):
        response = requests.get(base + path, timeout=30)
        assert response.status_code == 200, path
    # typed without the slash: the redirect to the page, not a 401
    response = requests.get(base + "/ui", timeout=30, allow_redirects=False)
    assert response.status_code == 308 and response.headers["Location"].endswith("/ui/")
    refused(stack.call("GET", "/networks"), 401, "missing_token")
    refused(requests.get(base + "/ui/missing.js", timeout=30), 401, "missing_token")


def test_reader_reads(stack: Stack, network: dict[str, Any]) -> None:
    for path in ("/networks", f"/networks/{network['uuid']}", "/openapi.json",
                 f"/networks/{network['uuid']}/interfaces", "/metrics"):
        response = stack.call("GET", path, READER)
        assert response.status_code == 200, (path, response.text)
    assert stack.call("GET", f"/networks/{network['uuid']}", READER).json() == network
    # the scheme is case-insensitive (RFC 6750 follows RFC 7235)
    assert stack.call("GET", "/networks", header=f"bearer {READER}").status_code == 200
    # a reader's 404 is the API's own, once it is authenticated
    assert stack.call("GET", "/networks/nw-absent", READER).json()["error"] == "not_found"


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/networks", {"uuid": "nw-by-reader", "ipv4_network": "10.78.0.0",
                           "ipv4_prefix": 24}),
    ("PUT", "/networks/{nw}", {"display_name": "renamed-by-reader"}),
    ("DELETE", "/networks/{nw}", {}),
    ("POST", "/datapaths/dp-x/networks/{nw}", {}),
])
def test_reader_writing_is_403(stack: Stack, network: dict[str, Any], method: str,
                               path: str, body: dict[str, Any]) -> None:
    before = stack.snapshot()
    response = stack.call(method, path.format(nw=network["uuid"]), READER, data=body)
    refused(response, 403, "forbidden")
    assert stack.snapshot() == before


def test_admin_writes(stack: Stack) -> None:
    uuid = unique("nw")
    created = stack.call("POST", "/networks", ADMIN, json={
        "uuid": uuid, "ipv4_network": "10.79.0.0", "ipv4_prefix": 24})
    assert created.status_code == 201, created.text
    updated = stack.call("PUT", f"/networks/{uuid}", ADMIN, data={"display_name": "adm"})
    assert updated.status_code == 200 and updated.json()["display_name"] == "adm"
    deleted = stack.call("DELETE", f"/networks/{uuid}", ADMIN)
    assert deleted.status_code == 200 and deleted.json()["uuid"] == uuid
    assert stack.call("GET", f"/networks/{uuid}", ADMIN).status_code == 404


def test_refusals_are_counted_in_metrics(stack: Stack) -> None:
    def refused_posts() -> float:
        """POSTs answered 4xx, whatever the endpoint (the status label is its class)."""
        text = stack.call("GET", "/metrics", READER).text
        return sum(sample.value for family in text_string_to_metric_families(text)
                   for sample in family.samples
                   if sample.name == "vnet_webapi_requests_total"
                   and sample.labels.get("method") == "POST"
                   and sample.labels.get("status") == "4xx")

    before = refused_posts()
    stack.call("POST", "/networks")
    assert refused_posts() == before + 1


def test_openapi_declares_the_bearer_scheme(stack: Stack) -> None:
    document = stack.call("GET", "/openapi.json", READER).json()
    validate(document)
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert document["security"] == [{"bearer": []}]
    paths = document["paths"]
    assert paths["/api/1.0/health"]["get"]["security"] == []
    assert "401" not in paths["/api/1.0/health"]["get"]["responses"]
    assert {"401", "403"} <= set(paths["/api/1.0/networks"]["post"]["responses"])
    assert "401" in paths["/api/1.0/networks"]["get"]["responses"]
    assert "403" not in paths["/api/1.0/networks"]["get"]["responses"]


# --- vnctl -----------------------------------------------------------------------------

def vnctl(stack: Stack, *args: str, env: dict[str, str | None] | None = None,
          expect: int = 0) -> Result:
    result = CliRunner().invoke(cli, ["--webapi-uri", stack.services.webapi_url, *args],
                                env={"VNCTL_TOKEN": None, **(env or {})})
    assert result.exit_code == expect, (args, result.output, result.exception)
    return result


def test_vnctl_token_option_and_environment(stack: Stack, network: dict[str, Any]) -> None:
    shown = vnctl(stack, "--token", READER, "--json", "networks", "show", network["uuid"])
    assert '"uuid": "' + network["uuid"] in shown.stdout
    uuid = unique("nw")
    vnctl(stack, "networks", "add", "--uuid", uuid, "--ipv4-network", "10.80.0.0",
          "--ipv4-prefix", "24", env={"VNCTL_TOKEN": ADMIN})
    assert stack.call("GET", f"/networks/{uuid}", READER).status_code == 200
    # --token wins over the environment
    denied = vnctl(stack, "--token", READER, "networks", "del", uuid,
                   env={"VNCTL_TOKEN": ADMIN}, expect=1)
    assert "forbidden: the reader role may only read" in denied.stderr
    vnctl(stack, "networks", "del", uuid, env={"VNCTL_TOKEN": ADMIN})


def test_vnctl_without_or_with_a_wrong_token(stack: Stack) -> None:
    missing = vnctl(stack, "networks", "show", expect=1)
    assert "missing_token" in missing.stderr and "--token or VNCTL_TOKEN" in missing.stderr
    wrong = vnctl(stack, "networks", "show", env={"VNCTL_TOKEN": "not-a-token"}, expect=1)
    assert "invalid_token: unknown token" in wrong.stderr
    spaced = vnctl(stack, "--token", "two words", "networks", "show", expect=2)
    assert "a token has no spaces" in spaced.stderr
    assert vnctl(stack, "networks", "show", env={"VNCTL_TOKEN": ""}, expect=1)


def test_vnctl_curl_log_names_the_variable_not_the_token(stack: Stack) -> None:
    result = vnctl(stack, "--curl", "networks", "show", env={"VNCTL_TOKEN": READER})
    assert '-H "Authorization: Bearer $VNCTL_TOKEN"' in result.stderr
    assert READER not in result.stdout + result.stderr


def test_tokens_never_logged(stack: Stack) -> None:
    log = stack.webapi.log_text()
    assert "level=INFO" in log  # the log is there, and holds no token
    assert ADMIN not in log and READER not in log


# --- settings webapi refuses to start with ---------------------------------------------

def start_refused(tmp_path: Path, **env: str) -> str:
    """Runs vnet-webapi with `env`; asserts it exits 2 without binding; returns its log."""
    port = free_tcp_port()
    result = subprocess.run(
        [find_program("vnet-webapi")], capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL, check=False,
        env={**os.environ, "VNET_PATHS_STATE_DIR": str(tmp_path),
             "VNET_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
             "VNET_WEBAPI_PORT": str(port), **env})
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "refusing to start" in output and "Listening at" not in output, output
    return output


def test_refuses_auth_none_on_a_non_loopback_host(tmp_path: Path) -> None:
    output = start_refused(tmp_path, VNET_WEBAPI_HOST="0.0.0.0", VNET_WEBAPI_AUTH="none")
    assert "host = 0.0.0.0 is not a loopback address and [webapi] auth = none" in output
    assert "allow_insecure = true" in output


@pytest.mark.parametrize(("text", "where"), [
    (f"{ADMIN} admin\n{READER} operator\n", ":2: unknown role 'operator'"),
    (f"# c\n{ADMIN} admin\n{ADMIN} reader\n", ":3: duplicate token (first on line 2)"),
    (f"{ADMIN} admin\n reader\n", ":2: expected '<token> <role>', got 1 word(s)"),
])
def test_refuses_a_malformed_tokens_file(tmp_path: Path, text: str, where: str) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(text)
    output = start_refused(tmp_path, VNET_WEBAPI_AUTH="token",
                           VNET_WEBAPI_TOKENS_FILE=str(tokens))
    assert f"{tokens}{where}" in output, output
    assert ADMIN not in output and READER not in output


def test_refuses_token_auth_without_a_tokens_file(tmp_path: Path) -> None:
    output = start_refused(tmp_path, VNET_WEBAPI_AUTH="token",
                           VNET_WEBAPI_TOKENS_FILE=str(tmp_path / "absent"))
    assert f"[webapi] tokens_file {tmp_path / 'absent'}" in output
