"""Flask application factory."""

from __future__ import annotations

import time
from typing import Any

from flask import Flask, Response, g, request

from vnet.config import Config
from vnet.metrics import CONTENT_TYPE_LATEST, exposition
from webapi import auth as webapi_auth
from webapi import errors
from webapi.auth import Auth
from webapi.backend import Backend, backend
from webapi.openapi import document
from webapi.routes import PREFIX, Route, api_routes
from webapi.ui import ui_routes


def create_app(config: Config, state: Backend | None = None, auth: Auth | None = None) -> Flask:
    """`state` replaces the database/vnmgr connections built from `config` (tests);
    `auth` the token settings read from `config` (webapi.auth.load_auth, which raises
    AuthConfigError for bad settings or a bad tokens file)."""
    app = Flask("webapi", static_folder=None)
    app.json.sort_keys = False  # rows keep the column order of docs/model-slice.md
    app.extensions["vnet"] = state = state or Backend.from_config(config)

    auth = auth or webapi_auth.load_auth(config)
    routes = all_routes()
    state.metrics.declare((route.endpoint, route.method) for route in routes)
    openapi = document(routes, auth.enabled)
    views = {"openapi": lambda: openapi}
    for route in routes:
        app.add_url_rule(route.rule, route.endpoint, views.get(route.endpoint, route.view),
                         methods=[route.method])

    errors.register(app)
    app.before_request(_start_timer)  # first: refused requests are counted too
    webapi_auth.install(app, auth)
    app.after_request(_count_request)
    return app


def all_routes() -> list[Route]:
    return [
        *api_routes(),
        Route(f"{PREFIX}/openapi.json", "GET", "openapi", _unused, "This OpenAPI document",
              "service", "OpenApiDocument", errors=()),
        Route("/metrics", "GET", "metrics", _metrics, "Prometheus metrics", "service", None,
              errors=()),
        *ui_routes(),
    ]


def _unused() -> Any:
    raise NotImplementedError  # replaced by the document built in create_app


def _metrics() -> Response:
    return Response(exposition(backend().metrics.registry),
                    headers={"Content-Type": CONTENT_TYPE_LATEST})


def _start_timer() -> None:
    g.started = time.perf_counter()


def _count_request(response: Response) -> Response:
    started = g.get("started")
    if started is not None:
        backend().metrics.observe(request.endpoint, request.method, response.status_code,
                                  time.perf_counter() - started)
    return response
