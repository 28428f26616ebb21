"""The one outbound HTTP client, and fetching JSON from the public Vintage Story APIs safely.

Every upstream call is bounded: per-phase timeouts on the client, a deadline over the whole
request (retries included) so a server that drips one byte at a time cannot hold a job, and a
body size cap checked while streaming so a huge answer is never buffered.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

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
                body = await self._get_with_retries(url)
        except TimeoutError:
            raise UpstreamUnreachable(
                url, f"no complete answer within {self.policy.deadline:g}s"
            ) from None
        try:
            if len(body) > _PARSE_IN_THREAD_BYTES:
                return await asyncio.to_thread(json.loads, body)
            return json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise UpstreamError(url, f"invalid JSON: {_short(exc)}") from None

    async def _get_with_retries(self, url: str) -> bytes:
        attempt = 0
        while True:
            try:
                return await self._get_once(url)
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

    async def _get_once(self, url: str) -> bytes:
        limit = self.policy.max_bytes
        try:
            async with self._client.stream("GET", url) as response:
                if response.status_code >= 500:
                    raise _Retryable(f"HTTP {response.status_code}")
                if response.status_code >= 400:
                    raise UpstreamError(url, f"HTTP {response.status_code}")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limit:
                    raise ResponseTooLarge(
                        url, f"response of {int(declared)} bytes exceeds the {limit} byte limit"
                    )
                chunks: list[bytes] = []
                received = 0
                async for chunk in response.aiter_bytes():
                    received += len(chunk)
                    if received > limit:
                        raise ResponseTooLarge(url, f"response exceeds the {limit} byte limit")
                    chunks.append(chunk)
                return b"".join(chunks)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError) as exc:
            # Nothing (or a broken reply) came back: worth another try after a pause.
            raise _Retryable(describe_http_error(exc)) from None
        except httpx.TimeoutException as exc:
            # A server that accepted the request but went silent would only go silent again;
            # retrying would multiply the wait without a better chance.
            raise UpstreamUnreachable(url, describe_http_error(exc)) from None
        except httpx.HTTPError as exc:
            raise UpstreamUnreachable(url, describe_http_error(exc)) from None


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
