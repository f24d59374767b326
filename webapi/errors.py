"""Every failure as JSON `{"error", "message", "field"}`; bad input never becomes a 500."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from vnet.errors import ApiError

log = logging.getLogger("webapi")


def _body(error: str, message: str, field: str | None = None) -> dict[str, Any]:
    return {"error": error, "message": message, "field": field}


def api_error(exc: ApiError) -> Any:
    return exc.to_dict(), exc.status


def http_error(exc: HTTPException) -> Any:
    # Unknown routes (404), wrong methods (405) and Werkzeug's own 400s.
    name = (exc.name or "error").lower().replace(" ", "_")
    response = exc.get_response()
    return _body(name, exc.description or name), exc.code or 500, \
        {k: v for k, v in response.headers.items() if k == "Allow"}


def database_down(exc: OperationalError) -> Any:
    log.error("database unavailable: %s", exc.orig)
    return _body("unavailable", "database unavailable"), 503


def internal_error(exc: Exception) -> Any:
    log.exception("internal error %s %s", request.method, request.path)
    return _body("internal", "internal error in webapi"), 500


def register(app: Flask) -> None:
    app.register_error_handler(ApiError, api_error)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(OperationalError, database_down)
    app.register_error_handler(Exception, internal_error)
