"""Request parameters: query string, then a JSON or form body on top.

OpenVNet's clients send form fields (`curl -d a=b`), newer ones JSON; any write's
parameters may also come in the query string, as OpenVNet (Sinatra's merged params)
reads them, the body winning. Values are passed to vnmgr as they arrive (strings or
JSON values): vnmgr.accept refuses names the write does not take, vnmgr.params does all
typing and validation.
"""

from __future__ import annotations

import json
from typing import Any

from flask import request

from vnet.errors import ApiError

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def request_params() -> dict[str, Any]:
    params: dict[str, Any] = request.args.to_dict()
    params.update(_body())
    return params


def _body() -> dict[str, Any]:
    raw = request.get_data(cache=True)
    if _looks_like_json(raw):
        return _json_object(raw)
    if request.mimetype in _FORM_TYPES:
        return request.form.to_dict()
    if raw.strip():
        raise ApiError(400, f"unsupported body type {request.mimetype or 'none'}: send JSON "
                            "or form fields")
    return {}


def _looks_like_json(raw: bytes) -> bool:
    if request.is_json:
        return True
    # `curl -d '{"a": 1}'` labels JSON as a form; reading it as JSON is what was meant.
    return request.mimetype in ("", "application/x-www-form-urlencoded", "text/plain") and \
        raw.lstrip()[:1] == b"{"


def _json_object(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"malformed JSON body: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the JSON body must be an object")
    return body
