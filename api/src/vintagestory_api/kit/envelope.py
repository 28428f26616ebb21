"""The one response envelope, typed so OpenAPI shows each route's real data schema."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, TypeAdapter

T = TypeVar("T")


class ApiResponse(BaseModel, Generic[T]):
    status: Literal["ok"] = "ok"
    data: T


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
