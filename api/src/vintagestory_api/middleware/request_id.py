"""Binds a request id to every log line of a request and returns it as `X-Request-ID`."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vintagestory_api.middleware.metrics import ROUTE_TEMPLATE_KEY

logger = structlog.get_logger()

REQUEST_ID_HEADER = b"x-request-id"
# A caller-supplied id is reused only if it is short and harmless in a log line.
_VALID_ID = re.compile(rb"^[A-Za-z0-9._-]{1,64}$")


class RequestIdMiddleware:
    """Pure ASGI middleware (no BaseHTTPMiddleware), so streaming and contextvars keep working."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(REQUEST_ID_HEADER, b"")
        request_id = incoming.decode() if _VALID_ID.match(incoming) else uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k != REQUEST_ID_HEADER]
                headers.append((REQUEST_ID_HEADER, request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            logger.info(
                "http_request",
                method=scope["method"],
                path=scope["path"],
                route=scope.get(ROUTE_TEMPLATE_KEY),
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
                client=scope["client"][0] if scope.get("client") else None,
            )
            structlog.contextvars.clear_contextvars()
