"""The error hierarchy's root, the generic errors, and the one place that turns every failure
into the error envelope. Each domain keeps its own errors in its `errors.py`, under one base
class derived from `ApiError`."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, ClassVar, Literal

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = structlog.get_logger()


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable UPPER_SNAKE error code")
    message: str = Field(description="Human-readable reason, naming the field when relevant")


class ErrorResponse(BaseModel):
    status: Literal["error"] = "error"
    error: ErrorDetail


class ApiError(Exception):
    """An error the API reports to its caller with a stable code."""

    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "BAD_REQUEST"
    # What OpenAPI shows as this error's example message.
    example: ClassVar[str] = "the request cannot be processed"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(ApiError):
    status_code = 404
    code = "NOT_FOUND"
    example = "no such route"


class Conflict(ApiError):
    status_code = 409
    code = "CONFLICT"
    example = "the request conflicts with the current state"


class ValidationFailed(ApiError):
    status_code = 422
    code = "VALIDATION_ERROR"
    example = "body.count: Input should be less than or equal to 50"


class ServiceUnavailable(ApiError):
    status_code = 503
    code = "SERVICE_UNAVAILABLE"
    example = "the service is not running"


class StateWriteFailed(ApiError):
    """A state file could not be written; nothing was changed."""

    status_code = 500
    code = "STATE_WRITE_FAILED"
    example = "settings could not be saved: [Errno 28] No space left on device"


class ExpectedFailure(Exception):
    """A job failure the operator expects to happen at times (an upstream API unreachable):
    recorded as a failed run like any other, but logged as one warning line, no traceback."""


_HTTP_CODES: dict[int, str] = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR",
    429: "TOO_MANY_REQUESTS",
    500: "INTERNAL_ERROR",
    503: "SERVICE_UNAVAILABLE",
}

_STATUS_TEXT: dict[int, str] = {
    400: "Bad request",
    401: "Missing or wrong API key",
    403: "The key's role may not do this",
    404: "Not found",
    409: "Conflict with the current state",
    422: "Invalid input; the message names the field",
    500: "The change could not be saved",
    503: "Not ready",
}


def error_responses(*errors: type[ApiError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the errors a route can raise, grouped by status.

    Each entry lists the codes it can carry and shows one example per code, so /docs tells the
    truth about what a client may receive.
    """
    by_status: dict[int, list[type[ApiError]]] = defaultdict(list)
    for error in errors:
        if error not in by_status[error.status_code]:
            by_status[error.status_code].append(error)
    responses: dict[int | str, dict[str, Any]] = {}
    for status, classes in sorted(by_status.items()):
        codes = ", ".join(f"`{cls.code}`" for cls in classes)
        examples = {
            cls.code: {
                "summary": cls.code,
                "value": error_body(cls.code, cls.example),
            }
            for cls in classes
        }
        responses[status] = {
            "model": ErrorResponse,
            "description": f"{_STATUS_TEXT.get(status, 'Error')} ({codes})",
            "content": {"application/json": {"examples": examples}},
        }
    return responses


# FastAPI documents a `{"detail": [...]}` 422 body (HTTPValidationError) for every operation
# that does not declare its own 422; ours all do, since every error is the envelope. The two
# schema names stay in the document so clients generated from earlier versions still compile.
_LEGACY_SCHEMAS: dict[str, dict[str, Any]] = {
    "ValidationError": {
        "title": "ValidationError",
        "type": "object",
        "description": "Not sent by this API; kept for generated clients. See ErrorResponse.",
        "properties": {
            "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
            "msg": {"type": "string"},
            "type": {"type": "string"},
        },
        "required": ["loc", "msg", "type"],
    },
    "HTTPValidationError": {
        "title": "HTTPValidationError",
        "type": "object",
        "description": "Not sent by this API; kept for generated clients. Invalid input is "
        "answered 422 with an ErrorResponse whose code is VALIDATION_ERROR or more specific.",
        "properties": {
            "detail": {"type": "array", "items": {"$ref": "#/components/schemas/ValidationError"}}
        },
    },
}


def keep_legacy_error_schemas(app: FastAPI) -> None:
    """Make `app.openapi()` keep the two schema names FastAPI would have added."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, definition in _LEGACY_SCHEMAS.items():
            schemas.setdefault(name, definition)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override


# What FastAPI raises (as HTTPException 400) for a body it cannot read, e.g. invalid UTF-8.
_BODY_NOT_DECODABLE = "There was an error parsing the body"


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"status": "error", "error": {"code": code, "message": message}}


def _location(loc: tuple[int | str, ...] | list[int | str]) -> str:
    # "body" / "query" prefixes say where, the rest names the field the caller sent.
    parts = [str(p) for p in loc]
    if len(parts) > 1 and parts[0] in {"body", "query", "path", "header"}:
        where, rest = parts[0], parts[1:]
        return f"{where}.{'.'.join(rest)}" if where != "body" else ".".join(rest)
    return ".".join(parts) or "body"


def validation_message(errors: list[dict[str, Any]] | Any) -> str:
    """One readable line per problem, each naming the field it is about."""
    lines: list[str] = []
    for err in errors:
        loc = err.get("loc", ())
        msg = str(err.get("msg", "invalid value"))
        if err.get("type") == "json_invalid":
            ctx = err.get("ctx") or {}
            detail = ctx.get("error", "")
            lines.append(f"request body is not valid JSON: {detail}".rstrip(": "))
            continue
        if tuple(loc) == ("body",) and err.get("type") in {"dict_type", "model_attributes_type"}:
            # Typically `curl -d` without a JSON content type: the body arrived as a form.
            lines.append(
                "request body must be a JSON object, sent with Content-Type: application/json"
            )
            continue
        if err.get("type") == "extra_forbidden":
            msg = "unknown field"
        lines.append(f"{_location(loc)}: {msg}")
    return "; ".join(lines) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    """Map every failure to the one error envelope."""

    async def api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return JSONResponse(exc_body(exc), status_code=exc.status_code)

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 400 and exc.detail == _BODY_NOT_DECODABLE:
            # A body that is not even text is invalid input like malformed JSON: 422, as declared.
            return JSONResponse(
                error_body("VALIDATION_ERROR", "request body could not be decoded"),
                status_code=422,
            )
        code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
        detail = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ").lower()
        if exc.status_code == 404 and detail == "Not Found":
            detail = "no such route"
        return JSONResponse(
            error_body(code, detail),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    async def validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return JSONResponse(
            error_body("VALIDATION_ERROR", validation_message(exc.errors())), status_code=422
        )

    async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        logger.exception(
            "unhandled_exception", method=request.method, path=request.url.path, exc_info=exc
        )
        return JSONResponse(error_body("INTERNAL_ERROR", "internal server error"), status_code=500)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unexpected_error)


def exc_body(exc: ApiError) -> dict[str, Any]:
    return error_body(exc.code, exc.message)
