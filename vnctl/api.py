"""A small HTTP client for the webapi that also records each call as a curl command.

The demo prints the record so a user can replay what it did; tests use the client as a
curl user would: form-encoded bodies, JSON answers, status codes checked.
"""

from __future__ import annotations

import json
import shlex
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


class HttpError(Exception):
    def __init__(self, status: int, body: Any, request: str) -> None:
        super().__init__(f"{request} -> {status}: {body}")
        self.status = status
        self.body = body


class Api:
    """`token`, when given, goes in every request as `Authorization: Bearer <token>`; the
    curl log names it `$VNCTL_TOKEN` instead, so a printed log leaks no secret."""

    def __init__(self, base_url: str, timeout: float = 30.0, token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.token = token
        self.curl_log: list[str] = []

    def request(self, method: str, path: str, **fields: Any) -> Any:
        url = f"{self.base_url}/api/1.0/{path.lstrip('/')}"
        form = {k: _form_value(v) for k, v in fields.items() if v is not None}
        data = urllib.parse.urlencode(form).encode() if form and method != "GET" else None
        if form and method == "GET":
            url += "?" + urllib.parse.urlencode(form)
        self.curl_log.append(_curl(method, url, form if method != "GET" else {},
                                   self.token is not None))
        headers = {"Authorization": f"Bearer {self.token}"} if self.token is not None else {}
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode(errors="replace")
            raise HttpError(exc.code, body, f"{method} {url}") from None

    def get(self, path: str, **query: Any) -> Any:
        return self.request("GET", path, **query)

    def post(self, path: str, **fields: Any) -> Any:
        return self.request("POST", path, **fields)

    def put(self, path: str, **fields: Any) -> Any:
        return self.request("PUT", path, **fields)

    def delete(self, path: str, **fields: Any) -> Any:
        return self.request("DELETE", path, **fields)


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _curl(method: str, url: str, form: dict[str, str], token: bool) -> str:
    parts = ["curl", "-s"] + (["-X", method] if method != "GET" else []) + [shlex.quote(url)]
    if token:
        # Double quotes: the shell expands the variable when the line is replayed.
        parts += ["-H", '"Authorization: Bearer $VNCTL_TOKEN"']
    for key, value in form.items():
        parts += ["-d", shlex.quote(f"{key}={value}")]
    return " ".join(parts)
