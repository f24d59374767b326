"""The OpenAPI document: valid, complete, and true to real responses."""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import pytest
import requests
from openapi_spec_validator import validate

from vnet.config import load_config
from vnmgr.handlers import HANDLERS
from webapi.app import all_routes, create_app
from webapi.openapi import openapi_path

from .support import Api, one_of_each, resource_of, unique

_VARIABLE = re.compile(r"\{([a-z_]+)\}")
_OPS = {"POST": "create", "PUT": "update", "DELETE": "delete"}


@pytest.fixture(scope="module")
def document(api: Api) -> dict[str, Any]:
    response = requests.get(api.url + "/openapi.json", timeout=10)
    assert response.status_code == 200
    return response.json()


def test_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)


def test_every_url_rule_is_documented_and_vice_versa(document: dict[str, Any],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VNET_DATABASE_URL", "sqlite://")  # the engine never connects here
    app = create_app(load_config())
    served = {(openapi_path(rule.rule), method.lower())
              for rule in app.url_map.iter_rules()
              for method in rule.methods or () if method not in ("HEAD", "OPTIONS")}
    documented = {(path, method) for path, item in document["paths"].items()
                  for method in item}
    assert served == documented


def test_every_write_route_has_a_vnmgr_handler() -> None:
    for route in all_routes():
        if route.method in _OPS:
            assert (_OPS[route.method], route.resource) in HANDLERS, route.endpoint


@pytest.fixture(scope="module")
def ids(api: Api) -> dict[str, str]:
    """One row of every resource, so every GET path has something to show."""
    network = api.create("networks", uuid=unique("nw"), ipv4_network="10.250.0.0")
    return one_of_each(api, network, rules="tcp:22:0.0.0.0/0")


def _concrete(path: str, ids: dict[str, str]) -> str:
    """Fill path variables: `{uuid}` is the preceding segment's row, `{x_uuid}` names one."""
    segments = path.split("/")
    for i, segment in enumerate(segments):
        match = _VARIABLE.fullmatch(segment)
        if match:
            name = match.group(1)
            resource = (resource_of(segments[i - 1]) if name == "uuid"
                        else name.removesuffix("_uuid") + "s")
            segments[i] = ids[resource]
    return "/".join(segments)


def test_every_get_response_matches_its_schema(api: Api, document: dict[str, Any],
                                               ids: dict[str, str]) -> None:
    base = api.services.webapi_url
    checked = 0
    for path, item in document["paths"].items():
        if "get" not in item:
            continue
        response = requests.get(base + _concrete(path, ids), timeout=10)
        assert response.status_code == 200, (path, response.text)
        content = item["get"]["responses"]["200"]["content"]
        if "application/json" not in content:  # /metrics, the topology page's files
            (media_type,) = content
            assert response.headers["Content-Type"].split(";")[0] == media_type, path
            continue
        body = response.json()
        if isinstance(body, dict) and "items" in body:
            assert body["items"], f"{path}: an empty page checks no row schema"
        schema = {**content["application/json"]["schema"], "components":
                  document["components"]}
        jsonschema.Draft202012Validator(schema).validate(body)
        checked += 1
    assert checked >= 25


def test_error_bodies_match_the_error_schema(api: Api, document: dict[str, Any]) -> None:
    schema = {"$ref": "#/components/schemas/Error", "components": document["components"]}
    for response in (api.get("/networks/nw-nosuch"), api.get("/nowhere"),
                     api.post("/networks", data="{", headers={"Content-Type":
                                                              "application/json"})):
        jsonschema.Draft202012Validator(schema).validate(response.json())
