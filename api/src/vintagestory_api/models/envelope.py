"""The one response envelope, typed so OpenAPI shows each route's real data schema."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field, TypeAdapter

T = TypeVar("T")


class ApiResponse(BaseModel, Generic[T]):
    status: Literal["ok"] = "ok"
    data: T


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable UPPER_SNAKE error code", examples=["JOB_NOT_FOUND"])
    message: str = Field(description="Human-readable reason, naming the field when relevant")


class ErrorResponse(BaseModel):
    status: Literal["error"] = "error"
    error: ErrorDetail


def ok(data: T) -> ApiResponse[T]:
    return ApiResponse[T](data=data)


class JsonBodyCache(Generic[T]):
    """One response body kept as JSON bytes, serialized again only when its source changes.

    For a large body read far more often than it changes (`GET /jobs`: 50 jobs, about 40 KB),
    FastAPI's per-request validation and serialization are most of the request. The bytes are
    what FastAPI itself produces for the route's response model (`TypeAdapter.dump_json`, by
    alias); the route returns them in a `Response` and declares `response_model` for OpenAPI.
    """

    def __init__(self, model: type[T]) -> None:
        self._adapter = TypeAdapter(model)
        self._source: object = None
        self._version: int | None = None
        self._body = b""

    def body(self, source: object, version: int, build: Callable[[], T]) -> bytes:
        """The cached bytes while `source` is the same object at the same `version`."""
        if source is not self._source or version != self._version:
            self._body = self._adapter.dump_json(build(), by_alias=True)
            self._source, self._version = source, version
        return self._body


_DESCRIPTIONS: dict[int, str] = {
    400: "Bad request",
    401: "Missing or wrong API key (UNAUTHORIZED)",
    403: "The key's role may not do this (FORBIDDEN)",
    404: "Not found",
    409: "Conflict with the current state",
    422: "Invalid input; the message names the field",
    503: "Not ready",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the error statuses a route can return."""
    return {
        code: {"model": ErrorResponse, "description": _DESCRIPTIONS.get(code, "Error")}
        for code in codes
    }
