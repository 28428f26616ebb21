"""The one response envelope, typed so OpenAPI shows each route's real data schema."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field

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
