"""Limits on what a request may send: a body over its cap and a URL over the limit are refused
with the error envelope before they are read."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from starlette.types import Message, Receive, Scope, Send

from vintagestory_api.app import API_PREFIX, create_app
from vintagestory_api.config import Settings
from vintagestory_api.kit.request_limits import (
    MAX_HEADER_BYTES,
    MAX_URL_BYTES,
    RequestLimitsMiddleware,
)

PREVIEW = f"{API_PREFIX}/triggers/preview"
DEFAULT_CAP = 1024 * 1024
JSON = {"Content-Type": "application/json"}
CHUNKED = (b"transfer-encoding", b"chunked")


def _preview_body(size: int) -> bytes:
    """A valid preview request padded with whitespace to exactly `size` bytes."""
    body = b'{"cron": "0 4 * * *"}'
    return body + b" " * (size - len(body))


def _chunks(total: int, chunk: int = 64 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        size = min(chunk, total - sent)
        sent += size
        yield b" " * size


def _assert_too_large(response: Response, cap: int) -> None:
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert error["code"] == "PAYLOAD_TOO_LARGE"
    assert str(cap) in error["message"]
    assert response.headers["X-Request-ID"]
    # The rest of the body is not wanted: the connection is closed rather than drained.
    assert response.headers["Connection"] == "close"


def test_declared_body_over_the_cap_is_413_for_the_monitor_key(
    client: TestClient, monitor_headers: dict[str, str]
) -> None:
    response = client.post(
        PREVIEW, content=_preview_body(DEFAULT_CAP + 1), headers={**monitor_headers, **JSON}
    )
    _assert_too_large(response, DEFAULT_CAP)


def test_body_without_content_length_over_the_cap_is_413(
    client: TestClient, monitor_headers: dict[str, str]
) -> None:
    response = client.post(
        PREVIEW, content=_chunks(DEFAULT_CAP + 1), headers={**monitor_headers, **JSON}
    )
    _assert_too_large(response, DEFAULT_CAP)


def test_body_of_exactly_the_cap_is_read(
    client: TestClient, monitor_headers: dict[str, str]
) -> None:
    response = client.post(
        PREVIEW, content=_preview_body(DEFAULT_CAP), headers={**monitor_headers, **JSON}
    )
    assert response.status_code == 200, response.text


def test_the_cap_is_a_setting(settings: Settings, monitor_headers: dict[str, str]) -> None:
    app = create_app(settings.model_copy(update={"max_body_bytes": 4096}))
    with TestClient(app) as client:
        small = client.post(
            PREVIEW, content=_preview_body(4096), headers={**monitor_headers, **JSON}
        )
        large = client.post(
            PREVIEW, content=_preview_body(4097), headers={**monitor_headers, **JSON}
        )
    assert small.status_code == 200, small.text
    _assert_too_large(large, 4096)


def test_url_over_the_limit_is_414_envelope(client: TestClient) -> None:
    response = client.get("/healthz", params={"pad": "a" * MAX_URL_BYTES})
    assert response.status_code == 414
    error = response.json()["error"]
    assert error["code"] == "URI_TOO_LONG"
    assert str(MAX_URL_BYTES) in error["message"]
    assert response.headers["X-Request-ID"]


def test_headers_over_the_limit_are_431_envelope(client: TestClient) -> None:
    response = client.get("/healthz", headers={"X-Padding": "a" * MAX_HEADER_BYTES})
    assert response.status_code == 431
    assert response.json()["error"]["code"] == "REQUEST_HEADERS_TOO_LARGE"


def test_url_under_the_limit_is_served(client: TestClient) -> None:
    assert client.get("/healthz", params={"pad": "a" * 4000}).status_code == 200


class _Reader:
    """An app that reads the whole body, then answers 200 with the number of bytes it got."""

    def __init__(self) -> None:
        self.received = 0
        self.disconnected = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.disconnected = True
                break
            self.received += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(self.received).encode()})


class _Client:
    """Drives one request through an ASGI app, counting the body chunks the app pulls."""

    def __init__(self, *, chunk: int, chunks: int) -> None:
        self.chunk = chunk
        self.chunks = chunks
        self.pulled = 0
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        if self.pulled == self.chunks:
            return {"type": "http.disconnect"}
        self.pulled += 1
        more = self.pulled < self.chunks
        return {"type": "http.request", "body": b"x" * self.chunk, "more_body": more}

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    async def request(
        self, app: RequestLimitsMiddleware, path: str, headers: list[tuple[bytes, bytes]]
    ) -> int:
        scope: Scope = {
            "type": "http",
            "method": "POST",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": headers,
        }
        await app(scope, self.receive, self.send)
        starts = [m for m in self.sent if m["type"] == "http.response.start"]
        assert len(starts) == 1, self.sent
        status: int = starts[0]["status"]
        return status


async def test_streamed_body_is_not_read_past_the_cap() -> None:
    inner = _Reader()
    app = RequestLimitsMiddleware(inner, max_body_bytes=1000)
    client = _Client(chunk=100, chunks=1000)
    assert await client.request(app, "/upload", headers=[CHUNKED]) == 413
    # Ten chunks fill the cap; the eleventh crosses it and is the last one pulled.
    assert client.pulled == 11
    assert inner.disconnected


async def test_declared_length_over_the_cap_is_refused_before_the_app_runs() -> None:
    inner = _Reader()
    app = RequestLimitsMiddleware(inner, max_body_bytes=1000)
    client = _Client(chunk=100, chunks=20)
    assert await client.request(app, "/upload", headers=[(b"content-length", b"2000")]) == 413
    assert client.pulled == 0


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/uploads/world", 200),
        ("/uploads", 200),
        ("/uploadsx", 413),
        ("/other", 413),
    ],
)
async def test_a_path_prefix_may_declare_a_larger_cap(path: str, expected: int) -> None:
    app = RequestLimitsMiddleware(_Reader(), max_body_bytes=1000, larger_bodies={"/uploads": 5000})
    client = _Client(chunk=100, chunks=30)
    assert await client.request(app, path, headers=[CHUNKED]) == expected


def test_limits_sit_outside_the_key_check(app: FastAPI) -> None:
    # No key and a huge declared body: refused for its size before anything else looks at it.
    with TestClient(app) as client:
        response = client.post(PREVIEW, content=_preview_body(DEFAULT_CAP + 1), headers=JSON)
    assert response.status_code == 413
