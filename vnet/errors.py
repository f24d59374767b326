"""The one error type that crosses process boundaries: vnmgr → webapi → HTTP client."""

from __future__ import annotations

from typing import Any

REASONS = {
    400: "bad_request",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    422: "invalid_value",
    503: "unavailable",
}


class ApiError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field

    @property
    def error(self) -> str:
        return REASONS.get(self.status, "error")

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.error, "message": self.message, "field": self.field}

    @classmethod
    def from_dict(cls, status: int, body: dict[str, Any]) -> ApiError:
        return cls(status, str(body.get("message", "")), body.get("field"))


def not_found(field: str, uuid: str) -> ApiError:
    return ApiError(404, f"{uuid} not found", field)


def invalid(field: str, message: str) -> ApiError:
    return ApiError(422, message, field)


def conflict(field: str | None, message: str) -> ApiError:
    return ApiError(409, message, field)
