"""The OpenAPI 3.1 document, generated from the resource registry and the route list."""

from __future__ import annotations

import re
from typing import Any

from vnet import ids
from vnet.errors import REASONS
from vnet.parse import DPID_MAX
from vnet.registry import NESTED, PAGE_DEFAULT, PAGE_MAX, RESOURCES, Field, Resource, accepted
from webapi.auth import OPEN_PATHS, READ_METHODS
from webapi.routes import Route

Schema = dict[str, Any]

_RESPONSE_PATTERNS = {
    "mac": r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$",
    "ipv4": r"^\d{1,3}(\.\d{1,3}){3}$",
    "dpid": r"^0x[0-9a-f]{16}$",
}
# What a request may send, where it is narrower than "a string": vnmgr refuses the rest.
_REQUEST_PATTERNS = {
    "dpid": r"^(0[xX])?[0-9a-fA-F]{1,16}$|^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){7}$",
}
_TYPES = {"integer": "integer", "boolean": "boolean"}
_RULE_VARIABLE = re.compile(r"<(?:[a-z_]+:)?([a-z_]+)>")


def field_schema(field: Field, request: bool = False, write: bool = False) -> Schema:
    """The JSON schema of a field in a row, or (request=True) in a query, or (write=True)
    in a write's body, where it also states the limits vnmgr enforces: integer bounds,
    the dpid's forms, the longest string."""
    request = request or write
    if field.kind == "object":
        return dict(field.schema or {"type": "object"})
    schema: Schema = {"type": _TYPES.get(field.kind, "string")}
    if field.enum:
        schema["enum"] = list(field.enum)
    if field.kind == "datetime":
        schema["format"] = "date-time"
    if field.kind == "ref":
        schema["pattern"] = ids.pattern(RESOURCES[field.ref or ""].prefix)
    if field.kind in _RESPONSE_PATTERNS and not request:
        # Rows always carry the canonical form; requests may use others (AA-BB-..., 42).
        schema["pattern"] = _RESPONSE_PATTERNS[field.kind]
    if write:
        schema.update(_write_limits(field))
    if field.description:
        schema["description"] = field.description
    if field.nullable:
        # In a row: no value. In a write: not given on POST, cleared on PUT.
        schema["type"] = [schema["type"], "null"]
    return schema


def _write_limits(field: Field) -> Schema:
    if field.kind == "dpid":
        return {"type": ["string", "integer"], "pattern": _REQUEST_PATTERNS["dpid"],
                "minimum": 0, "maximum": DPID_MAX}
    if field.bounds is not None:
        return {"minimum": field.bounds[0], "maximum": field.bounds[1]}
    if field.kind == "string" and not field.enum:
        return {"maxLength": field.max_len}
    return {}


def _row(res: Resource) -> Schema:
    fields = [f for f in res.all_fields() if f.shown]
    return {"type": "object", "description": res.description or f"A {res.title} row",
            "required": [f.name for f in fields],
            "properties": {f.name: field_schema(f) for f in fields}}


def _match_fields(res: Resource) -> set[str]:
    """The fields that name a nested row on DELETE of its collection (Nested.delete_by)."""
    return {name for nested in NESTED if nested.resource == res.name
            for name in nested.delete_by}


def _body(res: Resource, op: str) -> Schema:
    """A write's body: exactly what vnmgr.accept takes (a join's two ends come from the
    path), OpenVNet's aliases included; anything else is a 422. `op` is create, update
    or delete (a nested row named by its parameters)."""
    update = op == "update"
    names = accepted(op, res.name)
    if op == "delete":
        names &= _match_fields(res)
    fields = [f for f in res.all_fields() if f.name in names and (
        f.update if update else f.create)]
    properties = {f.name: field_schema(f, write=True) for f in fields}
    for alias, ours in res.aliases:
        if ours in properties:
            properties[alias] = {**properties[ours],
                                 "description": f"OpenVNet's name for {ours}"}
    schema: Schema = {"type": "object", "properties": properties,
                      "additionalProperties": False}
    required = [f.name for f in fields if f.required and not update]
    if required:
        schema["required"] = required
    return schema


def _page(res: Resource) -> Schema:
    return {"type": "object", "required": ["total_count", "offset", "limit", "items"],
            "properties": {"total_count": {"type": "integer", "minimum": 0},
                           "offset": {"type": "integer", "minimum": 0},
                           "limit": {"type": "integer", "minimum": 0, "maximum": PAGE_MAX},
                           "items": {"type": "array", "items": _ref(res.title)}}}


def _service_schemas() -> dict[str, Schema]:
    status = {"type": "string", "enum": ["ok", "unavailable"]}
    return {
        "Error": {"type": "object", "required": ["error", "message", "field"], "properties": {
            "error": {"type": "string", "examples": sorted(set(REASONS.values()))},
            "message": {"type": "string"},
            "field": {"type": ["string", "null"], "description": "the parameter to fix"}}},
        "Health": {"type": "object",
                   "required": ["status", "webapi", "vnmgr", "database", "seq",
                                "disconnected_datapaths"],
                   "properties": {
                       "status": {"type": "string", "enum": ["ok", "degraded", "unavailable"],
                                  "description": "degraded (200): some datapath is not "
                                                 "connected; unavailable (503): vnmgr or the "
                                                 "database is down"},
                       "webapi": {"const": "ok"}, "vnmgr": status, "database": status,
                       "seq": {"type": ["integer", "null"],
                               "description": "vnmgr's last event sequence"},
                       "disconnected_datapaths": {
                           "type": ["array", "null"], "items": {"type": "string"},
                           "description": "uuids of the datapaths whose is_connected is "
                                          "false (null when the database is down)"}}},
        "DatapathStatus": {
            "type": "object", "required": ["datapath_uuid", "node_id", "is_connected", "seq",
                                           "agent"],
            "properties": {"datapath_uuid": {"type": "string"}, "node_id": {"type": "string"},
                           "is_connected": {"type": "boolean"}, "seq": {"type": "integer"},
                           "agent": {"type": ["object", "null"],
                                     "description": "the vna's last report (seq, lag, age)"}}},
        "OpenApiDocument": {"type": "object", "required": ["openapi", "paths"]},
    }


def schemas() -> dict[str, Schema]:
    result = _service_schemas()
    for res in RESOURCES.values():
        result[res.title] = _row(res)
        result[f"{res.title}Page"] = _page(res)
        result[f"{res.title}Create"] = _body(res, "create")
        if res.updatable:
            result[f"{res.title}Update"] = _body(res, "update")
        if _match_fields(res):
            result[f"{res.title}Match"] = _body(res, "delete")
    return result


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def openapi_path(rule: str) -> str:
    return _RULE_VARIABLE.sub(r"{\1}", rule)


def _parameters(route: Route) -> list[Schema]:
    params: list[Schema] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _RULE_VARIABLE.findall(route.rule)]
    if route.page_of is not None:
        params += [
            {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0,
                                                        "maximum": PAGE_MAX,
                                                        "default": PAGE_DEFAULT}},
            {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0,
                                                         "default": 0}},
        ]
        params += [{"name": name, "in": "query", "description": "equality filter",
                    "schema": field_schema(field, request=True)}
                   for name, field in route.page_of.filterable().items()]
    return params


def _operation(route: Route, bearer: bool) -> Schema:
    if route.response is None:
        content = {route.media_type: {"schema": {"type": "string"}}}
    else:
        content = {"application/json": {"schema": _ref(route.response)}}
    responses: Schema = {str(route.status): {"description": route.summary, "content": content}}
    for status in route.errors:
        responses[str(status)] = {"$ref": f"#/components/responses/E{status}"}
    if route.endpoint == "health":
        responses["503"] = {"description": "vnmgr or the database is down",
                            "content": {"application/json": {"schema": _ref("Health")}}}
    operation: Schema = {"operationId": route.endpoint, "summary": route.summary,
                         "tags": [route.tag], "responses": responses}
    if bearer and route.rule in OPEN_PATHS:
        operation["security"] = []  # answered without a token (probes)
    elif bearer:
        responses["401"] = {"$ref": "#/components/responses/E401"}
        if route.method not in READ_METHODS:
            responses["403"] = {"$ref": "#/components/responses/E403"}
    parameters = _parameters(route)
    if parameters:
        operation["parameters"] = parameters
    if route.request is not None:
        body = _ref(route.request)
        operation["requestBody"] = {
            "description": "JSON or form fields, or the query string (the body wins); "
                           "an unknown parameter is a 422 naming it",
            "content": {"application/json": {"schema": body},
                        "application/x-www-form-urlencoded": {"schema": body}}}
    return operation


def _error_responses() -> dict[str, Schema]:
    descriptions = {400: "malformed request", 401: "no, a malformed or an unknown bearer token",
                    403: "the token's role may only read", 404: "not found", 409: "conflict",
                    422: "invalid value", 503: "vnmgr or the database unavailable"}
    return {f"E{status}": {"description": text, "content": {
        "application/json": {"schema": _ref("Error")}}} for status, text in descriptions.items()}


def document(routes: list[Route], bearer: bool = False) -> Schema:
    """The OpenAPI 3.1 document of `routes`; `bearer` (webapi.auth enabled) adds the
    bearer security scheme, required by every operation but the open ones, with their
    401 and (writes) 403 answers."""
    paths: dict[str, Schema] = {}
    for route in routes:
        paths.setdefault(openapi_path(route.rule), {})[route.method.lower()] = \
            _operation(route, bearer)
    components: Schema = {"schemas": schemas(), "responses": _error_responses()}
    security: Schema = {}
    if bearer:
        components["securitySchemes"] = {"bearer": {
            "type": "http", "scheme": "bearer",
            "description": "a token of [webapi] tokens_file: role admin or reader (GET only)"}}
        security["security"] = [{"bearer": []}]
    return {
        "openapi": "3.1.0",
        "info": {"title": "wakame-vnet API", "version": "1.0",
                 "description": "Virtual networks on Open vSwitch. Writes go through vnmgr; "
                                "errors are JSON {error, message, field}."},
        "paths": paths,
        "components": components,
        **security,
    }
