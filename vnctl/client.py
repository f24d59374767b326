"""The webapi as vnctl sees it: one method per request, every failure a CLI error."""

from __future__ import annotations

import urllib.error
from typing import Any

import click

from vnctl.api import Api, HttpError
from vnet.registry import PAGE_MAX

DEFAULT_URI = "http://127.0.0.1:9090"
API_PREFIX = "/api/1.0"


class VnctlError(click.ClickException):
    """Printed as `Error: <message>` on stderr; exit status 1 for every failure."""

    exit_code = 1


class ApiFailure(VnctlError):
    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body if isinstance(body, dict) else {"message": str(body)}
        self.error = self.body.get("error")
        self.field = self.body.get("field")
        message = self.body.get("message") or f"HTTP {status}"
        kind = f"{self.error}: " if self.error else f"HTTP {status}: "
        hint = "; give vnctl a token with --token or VNCTL_TOKEN" if status == 401 else ""
        super().__init__(kind + message + (f" (field: {self.field})" if self.field else "")
                         + hint)


class Unreachable(VnctlError):
    def __init__(self, uri: str, reason: object) -> None:
        super().__init__(
            f"cannot reach the webapi at {uri} ({reason}); is vnet-webapi running?"
            " Point vnctl at it with --webapi-uri or VNCTL_WEBAPI_URI.")


class Client:
    def __init__(self, uri: str = DEFAULT_URI, timeout: float = 30.0,
                 token: str | None = None) -> None:
        """`token`: the webapi's bearer token (`[webapi] auth = token`), None for none."""
        # Accept the API root as well, since that is what curl examples show.
        self.uri = uri.rstrip("/").removesuffix(API_PREFIX)
        self.api = Api(self.uri, timeout, token)

    @property
    def curl_log(self) -> list[str]:
        return self.api.curl_log

    def call(self, method: str, path: str, **fields: Any) -> Any:
        try:
            return self.api.request(method, path, **fields)
        except HttpError as exc:
            raise ApiFailure(exc.status, exc.body) from None
        except (urllib.error.URLError, OSError) as exc:
            raise Unreachable(self.uri, getattr(exc, "reason", exc)) from None
        except ValueError:
            raise VnctlError(f"{self.uri} answered {method} {path} with something that is "
                             "not JSON; is it the wakame-vnet webapi?") from None

    def list_all(self, path: str, **filters: Any) -> list[dict[str, Any]]:
        """Every row, following pages: a CLI listing that stops at page one would lie."""
        items: list[dict[str, Any]] = []
        while True:
            page = self.call("GET", path, limit=PAGE_MAX, offset=len(items), **filters)
            items += page["items"]
            if not page["items"] or len(items) >= page["total_count"]:
                return items
