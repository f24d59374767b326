"""Bad input, generated from the OpenAPI document: never a 5xx, and a refusal changes nothing.

Schemathesis reads the document the running webapi serves and generates valid and
invalid requests for every operation. Generation is derandomized, so a CI failure
reproduces locally with the same command.

Schemathesis's own pytest loader for a fixture-built schema (`schemathesis.pytest.
from_fixture`) does not run under pytest 9.2, so its public Hypothesis strategies are
driven directly: one test per operation, the operations being the routes the webapi
registers (test_openapi checks that the served document lists exactly those).
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode

from vnet.registry import RESOURCES
from webapi.app import all_routes
from webapi.openapi import openapi_path

from .support import Api, one_of_each, resource_of

MAX_EXAMPLES = 25  # per operation and backend: about 25 s per backend in all
WRITES = ("POST", "PUT", "DELETE")
# Deletes last, so that the rows of the `rows` fixture live through the other operations.
OPERATIONS = sorted(((openapi_path(route.rule), route.method) for route in all_routes()),
                    key=lambda op: (op[1] == "DELETE", op))

# No shrinking: the database moves on between examples, so a replayed failure may not fail
# again; the first failing request is reported as it was sent.
FUZZ = settings(max_examples=MAX_EXAMPLES, derandomize=True, database=None, deadline=None,
                phases=(Phase.explicit, Phase.generate), report_multiple_bugs=False,
                suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def web_schema(api: Api) -> Any:
    schema = schemathesis.openapi.from_url(api.url + "/openapi.json", timeout=10)
    schema.config.update(base_url=api.services.webapi_url)
    return schema


@pytest.fixture(scope="module")
def rows(api: Api, network: dict[str, Any]) -> dict[str, str]:
    """A row of every resource, linked together, so that requests also reach real rows:
    updates that must not stick, deletes refused because the row is still in use."""
    return one_of_each(api, network)


def existing(path: str, rows: dict[str, str]) -> dict[str, str]:
    """Path parameters naming rows that exist: `{uuid}` is a row of the segment before it,
    `{network_uuid}` a network."""
    segments = path.split("/")
    return {segment[1:-1]: rows[resource_of(segments[i - 1]) if segment == "{uuid}"
                                else segment[1:-len("_uuid}")] + "s"]
            for i, segment in enumerate(segments) if segment.startswith("{")}


@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_bad_input_is_refused_cleanly(api: Api, web_schema: Any, rows: dict[str, str],
                                      path: str, method: str) -> None:
    operation = web_schema[path][method]
    # Valid and invalid requests, to made-up and to real rows. Path parameters are any
    # string, so only a query string or a body can be made invalid.
    modes = [GenerationMode.POSITIVE]
    if operation.query or operation.body:
        modes.append(GenerationMode.NEGATIVE)
    real = existing(path, rows)
    cases = st.one_of(*(operation.as_strategy(generation_mode=mode, path_parameters=params)
                        for mode in modes for params in ({}, real)))

    @FUZZ
    @given(case=cases)
    def fuzz(case: Case) -> None:
        check(api, case)

    fuzz()


def check(api: Api, case: Case) -> None:
    write = case.method.upper() in WRITES
    before = api.snapshot()["seq"] if write else None
    response = case.call(base_url=api.services.webapi_url, timeout=30)
    assert response.status_code < 500, explain(case, response, "server error")
    if write and undocumented(case):
        # Negative generation adds properties the body schema forbids
        # (additionalProperties: false): the server must refuse them, not drop them.
        assert response.status_code == 422, explain(case, response, "unknown parameter "
                                                     "not refused")
    if 400 <= response.status_code < 500:
        try:
            body = response.json()
        except ValueError:
            pytest.fail(explain(case, response, "the error body is not JSON"))
        assert isinstance(body, dict) and {"error", "message"} <= body.keys(), \
            explain(case, response, "the error body lacks error or message")
        if write:
            assert api.snapshot()["seq"] == before, \
                explain(case, response, "refused, but the database changed")


def undocumented(case: Case) -> set[str]:
    """Body keys the operation's schema does not list (a join's ends, which the path
    names too, aside)."""
    if not isinstance(case.body, dict):
        return set()
    sent = set(case.body)
    if case.media_type != "application/json":
        # Form encoding leaves out fields without a value (None, an empty list or object).
        sent = {name for name, value in case.body.items() if value not in (None, [], {})}
    body = case.operation.definition.raw.get("requestBody")
    if body is None:
        return sent
    ref = body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    schema = case.operation.schema.raw_schema["components"]["schemas"][ref]
    return sent - set(schema["properties"]) - set(case.path_parameters or {})


def explain(case: Case, response: Any, problem: str) -> str:
    return (f"{case.method.upper()} {case.formatted_path} -> {response.status_code}: "
            f"{problem}\n{response.text}\n{case.as_curl_command()}")


def test_an_integer_filter_too_wide_for_any_column_is_refused(api: Api) -> None:
    # Found by the fuzzer: the driver failed on it (a 500) on SQLite.
    response = api.get("/mac_leases", params={"id": str(2**70)})
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "id"


# Names no write takes: generated, minus every name any resource knows (its fields, the
# OpenVNet aliases and unsupported names), so each one is unknown everywhere.
KNOWN = {name for res in RESOURCES.values()
         for name in ({f.name for f in res.all_fields()} | {a for a, _ in res.aliases}
                      | set(res.unsupported))}
UNKNOWN_NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,30}", fullmatch=True).filter(
    lambda name: name not in KNOWN)
WRITE_OPERATIONS = [op for op in OPERATIONS if op[1] in WRITES]


@pytest.mark.parametrize(("path", "method"), WRITE_OPERATIONS,
                         ids=[f"{m} {p}" for p, m in WRITE_OPERATIONS])
def test_an_unknown_parameter_is_refused_naming_it(api: Api, rows: dict[str, str], path: str,
                                                   method: str) -> None:
    """Wherever it comes (JSON, form field, query string), whatever else the request
    holds, on a real row or not: 422 naming it, and nothing changes."""
    real = existing(path, rows)
    made_up = {name: f"{value.split('-')[0]}-nosuch" for name, value in real.items()}

    @settings(max_examples=10, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(name=UNKNOWN_NAMES, value=st.one_of(st.text(max_size=20), st.integers()),
           where=st.sampled_from(["json", "form", "query"]),
           target=st.sampled_from([real, made_up]))
    def fuzz(name: str, value: Any, where: str, target: dict[str, str]) -> None:
        url = path.format(**target)
        sent: dict[str, Any] = {name: value if where == "json" else str(value)}
        before = api.snapshot()["seq"]
        response = api.request(method, url.removeprefix("/api/1.0"), **_placed(where, sent))
        assert response.status_code == 422, (method, url, where, sent, response.text)
        assert response.json()["field"] == name, response.text
        assert api.snapshot()["seq"] == before

    fuzz()


def _placed(where: str, params: dict[str, Any]) -> dict[str, Any]:
    """requests' keyword for sending params as a JSON body, form fields or a query."""
    return {"json": {"json": params}, "form": {"data": params},
            "query": {"params": params}}[where]
