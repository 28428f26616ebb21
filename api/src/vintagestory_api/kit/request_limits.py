"""Limits on what a request may send: how long its URL and headers are, how large its body.

Every body used to be read in full before anything looked at its size: a 300 MB body sent with
the read-only key took the process to 1.3 GB. Here a URL over its limit is answered 414,
headers over theirs 431 and a body declared (`Content-Length`) over its cap 413, all before the
app runs; a body sent without a length (chunked) is counted as the app reads it and answered
413 as soon as it crosses the cap, so no more than the cap is ever read. Refusals close the
connection, so the server does not go on reading (and discarding) what the client still sends.

The cap is decided by path, before routing, so that a declared length is refused without
reading a byte: routes that take larger bodies (uploads) get their own cap by path prefix.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vintagestory_api.errors import (
    ApiError,
    HeadersTooLarge,
    PayloadTooLarge,
    UriTooLong,
    error_response,
)

# Path and query together; what browsers and proxies accept everywhere is about this long.
MAX_URL_BYTES = 8 * 1024
# Names and values of all headers together: what uvicorn allowed for the whole request head
# before it was raised so that long URLs reach the 414 here (see __main__).
MAX_HEADER_BYTES = 16 * 1024
_CLOSE = {"Connection": "close"}
_FRAMED_BY_HEADERS = frozenset({"1.0", "1.1"})


class _Head:
    """What one pass over the headers tells: their size and how the body is framed."""

    __slots__ = ("chunked", "content_length", "size")

    def __init__(self, headers: list[tuple[bytes, bytes]]) -> None:
        self.size = 0
        self.content_length: int | None = None
        self.chunked = False
        for name, value in headers:
            self.size += len(name) + len(value)
            if name == b"content-length":
                # HTTP/1.1 servers refuse a malformed length before the app sees it.
                self.content_length = int(value) if value.isdigit() else None
            elif name == b"transfer-encoding":
                self.chunked = True


def _url_bytes(scope: Scope) -> int:
    raw_path: bytes | None = scope.get("raw_path")
    path = len(raw_path) if raw_path is not None else len(scope["path"].encode())
    return path + len(scope.get("query_string", b""))


class RequestLimitsMiddleware:
    """Pure ASGI middleware refusing an overlong URL (414), oversized headers (431) and an
    oversized body (413).

    `larger_bodies` maps a path prefix to the cap of the routes under it (the prefix itself
    and every path below it, by whole segments); the longest matching prefix wins, every other
    path has `max_body_bytes`.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        larger_bodies: Mapping[str, int] | None = None,
        max_url_bytes: int = MAX_URL_BYTES,
        max_header_bytes: int = MAX_HEADER_BYTES,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_url_bytes = max_url_bytes
        self.max_header_bytes = max_header_bytes
        self._larger = sorted(
            ((prefix.rstrip("/"), cap) for prefix, cap in (larger_bodies or {}).items()),
            key=lambda item: len(item[0]),
            reverse=True,
        )

    def body_cap(self, path: str) -> int:
        for prefix, cap in self._larger:
            if path == prefix or path.startswith(prefix + "/"):
                return cap
        return self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _url_bytes(scope) > self.max_url_bytes:
            await _refuse(UriTooLong(self.max_url_bytes), scope, receive, send)
            return
        head = _Head(scope["headers"])
        if head.size > self.max_header_bytes:
            await _refuse(HeadersTooLarge(self.max_header_bytes), scope, receive, send)
            return
        cap = self.body_cap(scope["path"])
        if head.content_length is not None:
            if head.content_length > cap:
                await _refuse(PayloadTooLarge(cap), scope, receive, send)
                return
            # The server delivers no more than the declared length: nothing to count.
            await self.app(scope, receive, send)
            return
        # In HTTP/1.1 a body without a length is chunked; without either there is none (HTTP/2
        # frames bodies itself, so there any request may have one).
        if not head.chunked and scope.get("http_version", "1.1") in _FRAMED_BY_HEADERS:
            await self.app(scope, receive, send)
            return
        await _CountedBody(self.app, cap)(scope, receive, send)


async def _refuse(error: ApiError, scope: Scope, receive: Receive, send: Send) -> None:
    await error_response(error, headers=_CLOSE)(scope, receive, send)


class _CountedBody:
    """One request whose body has no declared length: counted as the app reads it.

    When it crosses the cap, the 413 is sent from inside `receive` (the app is waiting for the
    body, so it has sent nothing yet) and the app is told the client is gone; whatever the app
    answers after that is dropped.
    """

    def __init__(self, app: ASGIApp, cap: int) -> None:
        self.app = app
        self.cap = cap
        self.received = 0
        self.started = False
        self.refused = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def counted_receive() -> Message:
            if self.refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] != "http.request":
                return message
            self.received += len(message.get("body", b""))
            if self.received <= self.cap:
                return message
            self.refused = True
            if not self.started:
                self.started = True
                await _refuse(PayloadTooLarge(self.cap), scope, receive, send)
            return {"type": "http.disconnect"}

        async def tracked_send(message: Message) -> None:
            if self.refused:
                return
            if message["type"] == "http.response.start":
                self.started = True
            await send(message)

        await self.app(scope, counted_receive, tracked_send)
