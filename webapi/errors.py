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


# The most of a refused body read and discarded after a 413 (see _discard_body).
DISCARD_MAX = 64 << 20


def _discard_body() -> None:
    """Read and drop the body a 413 refused unread, in 64 KiB pieces, so the client's
    keep-alive connection stays in step: gunicorn ignores an application's `Connection:
    close`, and the next request on that connection otherwise failed (16 in 60 tries:
    "Remote end closed connection without response").  A body over DISCARD_MAX is left
    unread (reading it would let a client keep a request thread busy at will)."""
    length = request.content_length or 0
    stream = request.environ.get("wsgi.input")
    if stream is None or length > DISCARD_MAX:
        return
    while length > 0:
        chunk = stream.read(min(65536, length))
        if not chunk:
            return
        length -= len(chunk)


def http_error(exc: HTTPException) -> Any:
    # Unknown routes (404), wrong methods (405), Werkzeug's own 400s, 413.
    if exc.code == 413:
        _discard_body()
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
