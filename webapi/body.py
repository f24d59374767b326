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
    """Raises ApiError(422, name) for a parameter given more than once in one place (a
    repeated form field or query parameter, a duplicate JSON key): keeping one of the
    values would silently drop the others (`-d rules=A -d rules=B` is one rule per line
    in one value); 400 for a body that is neither JSON nor form fields."""
    params: dict[str, Any] = _single(request.args)
    params.update(_body())
    return params


def _single(fields: Any) -> dict[str, Any]:
    """A werkzeug MultiDict as a plain dict, refusing repeated names."""
    out = {}
    for name, values in fields.lists():
        if len(values) > 1:
            raise _repeated(name, len(values))
        out[name] = values[0]
    return out


def _repeated(name: str, times: int) -> ApiError:
    hint = " (several security group rules go in one value, one per line)" \
        if name == "rules" else ""
    return ApiError(422, f"{name} is given {times} times: give it once{hint}", name)


def _body() -> dict[str, Any]:
    raw = request.get_data(cache=True)
    if _looks_like_json(raw):
        return _json_object(raw)
    if request.mimetype in _FORM_TYPES:
        return _single(request.form)
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
        body = json.loads(raw, parse_constant=_not_json, object_pairs_hook=_unique_keys)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"malformed JSON body: {exc}") from None
    except RecursionError:  # json's C decoder recurses per nesting level
        raise ApiError(400, "malformed JSON body: nested too deeply") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the JSON body must be an object")
    return body


def _not_json(name: str) -> None:
    """Python's json reads NaN and Infinity; RFC 8259 has no such values."""
    raise ValueError(f"{name} is not a JSON value (RFC 8259)")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _repeated(key, sum(1 for k, _ in pairs if k == key))
        out[key] = value
    return out
