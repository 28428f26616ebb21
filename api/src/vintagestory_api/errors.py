"""The error hierarchy and the one place that turns every failure into the error envelope."""

from __future__ import annotations

from typing import Any, ClassVar

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = structlog.get_logger()


class ApiError(Exception):
    """An error the API reports to its caller with a stable code."""

    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "BAD_REQUEST"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unauthorized(ApiError):
    status_code = 401
    code = "UNAUTHORIZED"


class Forbidden(ApiError):
    status_code = 403
    code = "FORBIDDEN"


class NotFound(ApiError):
    status_code = 404
    code = "NOT_FOUND"


class JobNotFound(NotFound):
    code = "JOB_NOT_FOUND"

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job '{job_id}' does not exist")
        self.job_id = job_id


class Conflict(ApiError):
    status_code = 409
    code = "CONFLICT"


class JobAlreadyRunning(Conflict):
    code = "JOB_ALREADY_RUNNING"

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job '{job_id}' is already running")
        self.job_id = job_id


class JobNotResumable(Conflict):
    code = "JOB_NOT_RESUMABLE"


class JobAlreadyExists(Conflict):
    code = "JOB_ALREADY_EXISTS"


class ValidationFailed(ApiError):
    status_code = 422
    code = "VALIDATION_ERROR"


class InvalidSchedule(ValidationFailed):
    """A cron expression, interval or timezone that cannot be scheduled; names the field."""

    code = "INVALID_SCHEDULE"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class MetricsWindowTooLong(ValidationFailed):
    """A history window longer than the live retention setting (valid by schema, not by state)."""

    code = "METRICS_WINDOW_TOO_LONG"


class ApiSettingUnknown(ValidationFailed):
    code = "API_SETTING_UNKNOWN"


class ApiSettingInvalid(ValidationFailed):
    code = "API_SETTING_INVALID"


class ServiceUnavailable(ApiError):
    status_code = 503
    code = "SERVICE_UNAVAILABLE"


class SchedulerNotRunning(ServiceUnavailable):
    code = "SCHEDULER_NOT_RUNNING"


class StateWriteFailed(ApiError):
    """A state file could not be written; nothing was changed."""

    status_code = 500
    code = "STATE_WRITE_FAILED"


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
