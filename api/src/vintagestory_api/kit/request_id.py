"""One layer around every request: its id, its access log line and its HTTP metrics, and the
answer to an exception nothing handled.

The request id is bound to every log line of the request and returned as `X-Request-ID`. Doing
the metrics here too keeps one `send` wrapper per request instead of one per concern. Starlette
answers unhandled exceptions in its outermost layer, after this one has finished: that 500 had
no `X-Request-ID` and its log line no request id, so they are answered here instead.
"""

from __future__ import annotations

import os
import re
import time
from typing import Protocol

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vintagestory_api.errors import unexpected_error_response

from .routes import KNOWN_METHODS, RouteLabeler

logger = structlog.get_logger()

REQUEST_ID_HEADER = b"x-request-id"


class HttpMetrics(Protocol):
    """Where finished requests are counted (the Prometheus registry, set on `app.state` as
    `http_metrics` in the lifespan); a Protocol so this plumbing imports no metrics domain."""

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None: ...


# A caller-supplied id is reused only if it is short and harmless in a log line.
_VALID_ID = re.compile(rb"^[A-Za-z0-9._-]{1,64}$")


def _caller_id(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The caller's `X-Request-ID` (the last one, if repeated) when it is safe to reuse.

    A scan rather than `dict(headers)`, which built a dict of every header on every request.
    """
    incoming = b""
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            incoming = value
    return incoming.decode() if incoming and _VALID_ID.match(incoming) else None


class RequestIdMiddleware:
    """Pure ASGI middleware (no BaseHTTPMiddleware), so streaming and contextvars keep working."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._labeler = RouteLabeler()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Otherwise 128 random bits as 32 hex digits, the shape of `uuid4().hex` for less.
        request_id = _caller_id(scope["headers"]) or os.urandom(16).hex()
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500
        responded = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status = message["status"]
                responded = True
                headers = [(k, v) for k, v in message.get("headers", []) if k != REQUEST_ID_HEADER]
                headers.append((REQUEST_ID_HEADER, request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            # Logged (with the id bound) and answered here, and not raised further: that would
            # log it twice more, by Starlette and by uvicorn. Once a response has begun its
            # status is sent; the server closes the connection of the unfinished response.
            response = unexpected_error_response(scope, exc)
            if not responded:
                await response(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = self._labeler.route(scope)
            # Built in the lifespan with the other services; requests before it are not counted.
            metrics: HttpMetrics | None = (
                getattr(scope["app"].state, "http_metrics", None) if "app" in scope else None
            )
            if metrics is not None:
                method = scope["method"] if scope["method"] in KNOWN_METHODS else "other"
                metrics.observe_request(route, method, status, seconds)
            # A 5xx is the service failing, which an operator alerts on; a 4xx is the caller's.
            log = logger.error if status >= 500 else logger.info
            log(
                "http_request",
                method=scope["method"],
                path=scope["path"],
                route=route,
                status=status,
                duration_ms=round(seconds * 1000, 2),
                client=scope["client"][0] if scope.get("client") else None,
            )
            structlog.contextvars.clear_contextvars()
