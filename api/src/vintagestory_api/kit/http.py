"""The one outbound HTTP client, and fetching JSON from the public Vintage Story APIs safely.

Every upstream call is bounded: per-phase timeouts on the client, a deadline over the whole
request (retries included) so a server that drips one byte at a time cannot hold a job, and a
body size cap checked while streaming so a huge answer is never buffered.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import httpx
import structlog

from vintagestory_api import __version__
from vintagestory_api.config import Settings

logger = structlog.get_logger()

USER_AGENT = f"vintagestory-api/{__version__}"
# Parsing a few MiB of JSON takes long enough to stall the event loop (and /healthz with it).
_PARSE_IN_THREAD_BYTES = 1024 * 1024


class UpstreamError(Exception):
    """An upstream API answered, but not with something usable; `reason` says why."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


class UpstreamUnreachable(UpstreamError):
    """No usable answer at all: connection refused, timed out, or the server kept failing (5xx)."""


class ResponseTooLarge(UpstreamError):
    pass


@dataclass(frozen=True)
class FetchPolicy:
    """Limits applied to every upstream request."""

    deadline: float = 60.0
    max_bytes: int = 20 * 1024 * 1024
    retries: int = 2
    backoff: float = 0.5

    @classmethod
    def from_settings(cls, settings: Settings) -> FetchPolicy:
        return cls(
            deadline=settings.http_request_deadline,
            max_bytes=settings.http_max_response_bytes,
            retries=settings.http_retries,
            backoff=settings.http_retry_backoff,
        )


def create_http_client(settings: Settings) -> httpx.AsyncClient:
    """The shared client; built in the lifespan and closed (`aclose`) at shutdown."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(
            connect=settings.http_connect_timeout,
            read=settings.http_read_timeout,
            write=settings.http_read_timeout,
            pool=settings.http_connect_timeout,
        ),
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        follow_redirects=True,
        max_redirects=5,
        limits=httpx.Limits(max_connections=16, max_keepalive_connections=8),
    )


class JsonFetcher:
    """GET a URL and return its parsed JSON, within the policy's limits."""

    def __init__(self, client: httpx.AsyncClient, policy: FetchPolicy | None = None) -> None:
        self._client = client
        self.policy = policy if policy is not None else FetchPolicy()

    async def get_json(self, url: str) -> Any:
        """Parsed JSON body of `url`; raises `UpstreamError` (or a subclass) with a reason."""
        try:
            async with asyncio.timeout(self.policy.deadline):
                body = await self._get_with_retries(url, _MemorySink, self.policy.max_bytes)
        except TimeoutError:
            raise UpstreamUnreachable(
                url, f"no complete answer within {self.policy.deadline:g}s"
            ) from None
        assert isinstance(body, bytes)
        try:
            if len(body) > _PARSE_IN_THREAD_BYTES:
                return await asyncio.to_thread(json.loads, body)
            return json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise UpstreamError(url, f"invalid JSON: {_short(exc)}") from None

    async def download(self, url: str, dest: Path, *, max_bytes: int, deadline: float) -> int:
        """Stream `url` into the file `dest` (created or truncated); the number of bytes.

        A file, not memory: a download may be far larger than any JSON answer. A body cut short
        (fewer bytes than its declared length) is an error, never a shorter file.
        """
        try:
            async with asyncio.timeout(deadline):
                size = await self._get_with_retries(
                    url, lambda: _FileSink(dest), max_bytes, accept="*/*"
                )
        except TimeoutError:
            raise UpstreamUnreachable(url, f"download not complete within {deadline:g}s") from None
        assert isinstance(size, int)
        return size

    async def _get_with_retries(
        self,
        url: str,
        sink: Callable[[], _Sink],
        limit: int,
        accept: str | None = None,
    ) -> bytes | int:
        attempt = 0
        while True:
            try:
                return await self._get_once(url, sink(), limit, accept)
            except _Retryable as exc:
                if attempt >= self.policy.retries:
                    raise UpstreamUnreachable(url, exc.reason) from None
                delay = self.policy.backoff * (2**attempt)
                attempt += 1
                logger.info(
                    "upstream_request_retry",
                    url=url,
                    attempt=attempt,
                    reason=exc.reason,
                    delay_seconds=delay,
                )
                await asyncio.sleep(delay)

    async def _get_once(self, url: str, sink: _Sink, limit: int, accept: str | None) -> bytes | int:
        headers = {"Accept": accept} if accept else None
        try:
            async with self._client.stream("GET", url, headers=headers) as response:
                if response.status_code >= 500:
                    raise _Retryable(f"HTTP {response.status_code}")
                if response.status_code >= 400:
                    raise UpstreamError(url, f"HTTP {response.status_code}")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limit:
                    raise ResponseTooLarge(
                        url, f"response of {int(declared)} bytes exceeds the {limit} byte limit"
                    )
                received = 0
                with sink:
                    async for chunk in response.aiter_bytes():
                        received += len(chunk)
                        if received > limit:
                            raise ResponseTooLarge(url, f"response exceeds the {limit} byte limit")
                        await sink.write(chunk)
                    return await sink.finish()
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError) as exc:
            # Nothing (or a broken reply) came back: worth another try after a pause.
            raise _Retryable(describe_http_error(exc)) from None
        except httpx.TimeoutException as exc:
            # A server that accepted the request but went silent would only go silent again;
            # retrying would multiply the wait without a better chance.
            raise UpstreamUnreachable(url, describe_http_error(exc)) from None
        except httpx.HTTPError as exc:
            raise UpstreamUnreachable(url, describe_http_error(exc)) from None
        except OSError as exc:
            raise UpstreamError(url, f"cannot write the download: {exc.strerror or exc}") from None


class _Sink:
    """Where one attempt's body goes; a retry starts a fresh one."""

    def __enter__(self) -> _Sink:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    async def write(self, chunk: bytes) -> None:
        raise NotImplementedError

    async def finish(self) -> bytes | int:
        raise NotImplementedError


class _MemorySink(_Sink):
    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    async def write(self, chunk: bytes) -> None:
        self._chunks.append(chunk)

    async def finish(self) -> bytes:
        return b"".join(self._chunks)


class _FileSink(_Sink):
    # Chunks are gathered and written in a thread in pieces of this size, so the event loop
    # neither blocks on the disk nor pays a thread hop per small network chunk.
    _BATCH = 1024 * 1024

    def __init__(self, path: Path) -> None:
        self._file: BinaryIO = path.open("wb")
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._size = 0

    def __exit__(self, *_: object) -> None:
        self._file.close()

    async def write(self, chunk: bytes) -> None:
        self._pending.append(chunk)
        self._pending_bytes += len(chunk)
        self._size += len(chunk)
        if self._pending_bytes >= self._BATCH:
            await self._flush()

    async def _flush(self) -> None:
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        await asyncio.to_thread(self._file.write, data)

    async def finish(self) -> int:
        await self._flush()
        await asyncio.to_thread(self._sync)
        return self._size

    def _sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())


class _Retryable(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def describe_http_error(exc: httpx.HTTPError) -> str:
    """What went wrong with a request, in words (the kind of failure, then httpx's detail)."""
    kinds: dict[type[httpx.HTTPError], str] = {
        httpx.ConnectTimeout: "connect timed out",
        httpx.ConnectError: "connection failed",
        httpx.ReadTimeout: "no data received within the read timeout",
        httpx.WriteTimeout: "request could not be sent within the write timeout",
        httpx.PoolTimeout: "no free connection within the pool timeout",
        httpx.RemoteProtocolError: "connection closed mid-reply",
    }
    for kind, text in kinds.items():
        if isinstance(exc, kind):
            detail = _short(exc)
            return f"{text} ({detail})" if detail else text
    return f"{type(exc).__name__}: {_short(exc)}"


def _short(exc: BaseException) -> str:
    text = str(exc).strip().replace("\n", "; ")
    return text if len(text) <= 200 else text[:197] + "..."
