from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import respx

from tests.support.stub_server import StubServer
from tests.support.vs_wiring import stub_settings
from vintagestory_api import __version__
from vintagestory_api.config import Settings
from vintagestory_api.kit.http import (
    FetchPolicy,
    JsonFetcher,
    ResponseTooLarge,
    UpstreamError,
    UpstreamUnreachable,
    create_http_client,
)


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer.running() as server:
        yield server


@pytest.fixture
def fast(settings: Settings, stub: StubServer) -> Settings:
    return stub_settings(settings, stub)


@pytest.fixture
async def fetcher(fast: Settings) -> AsyncIterator[JsonFetcher]:
    async with create_http_client(fast) as client:
        yield JsonFetcher(client, FetchPolicy.from_settings(fast))


async def _fails(fetcher: JsonFetcher, url: str) -> tuple[UpstreamError, float]:
    started = time.monotonic()
    with pytest.raises(UpstreamError) as caught:
        await fetcher.get_json(url)
    return caught.value, time.monotonic() - started


def test_client_has_explicit_timeouts_and_product_user_agent(settings: Settings) -> None:
    client = create_http_client(settings)
    assert client.timeout.connect == settings.http_connect_timeout
    assert client.timeout.read == settings.http_read_timeout
    assert client.timeout.write is not None
    assert client.timeout.pool is not None
    assert client.headers["User-Agent"] == f"vintagestory-api/{__version__}"


async def test_user_agent_is_sent(settings: Settings) -> None:
    with respx.mock:
        route = respx.get("https://example.test/x.json").respond(json={"ok": 1})
        async with create_http_client(settings) as client:
            assert await JsonFetcher(client).get_json("https://example.test/x.json") == {"ok": 1}
    assert route.calls.last.request.headers["User-Agent"].startswith("vintagestory-api/")


async def test_fetches_json_from_stub(fetcher: JsonFetcher, stub: StubServer) -> None:
    data: dict[str, Any] = await fetcher.get_json(f"{stub.versions_url}/stable.json")
    assert "1.22.7" in data


async def test_5xx_is_retried_then_reported(fetcher: JsonFetcher, stub: StubServer) -> None:
    stub.fault = "500"
    error, _ = await _fails(fetcher, f"{stub.versions_url}/stable.json")
    assert isinstance(error, UpstreamUnreachable)
    assert "HTTP 500" in error.reason
    assert stub.count("/stable.json") == 1 + fetcher.policy.retries


async def test_4xx_is_not_retried(fetcher: JsonFetcher, stub: StubServer) -> None:
    error, _ = await _fails(fetcher, f"{stub.versions_url}/nothing-here")
    assert not isinstance(error, UpstreamUnreachable)
    assert "HTTP 404" in error.reason
    assert stub.count("/nothing-here") == 1


async def test_connection_refused_is_retried_then_reported(
    fetcher: JsonFetcher, stub: StubServer
) -> None:
    stub.stop()
    error, elapsed = await _fails(fetcher, f"{stub.versions_url}/stable.json")
    assert isinstance(error, UpstreamUnreachable)
    assert "connection failed" in error.reason
    assert elapsed < 2


async def test_reply_that_never_comes_ends_at_read_timeout(
    fetcher: JsonFetcher, stub: StubServer, fast: Settings
) -> None:
    stub.fault = "hang"
    error, elapsed = await _fails(fetcher, f"{stub.versions_url}/stable.json")
    assert isinstance(error, UpstreamUnreachable)
    assert "read timeout" in error.reason
    # Read timeouts are not retried: one wait, not one per retry.
    assert elapsed < fast.http_read_timeout + 1
    assert stub.count("/stable.json") == 1


async def test_one_byte_every_two_seconds_ends_at_read_timeout(
    fetcher: JsonFetcher, stub: StubServer, fast: Settings
) -> None:
    stub.fault = "drip"
    error, elapsed = await _fails(fetcher, f"{stub.versions_url}/stable.json")
    assert "read timeout" in error.reason
    assert elapsed < fast.http_read_timeout + 1


async def test_drip_faster_than_read_timeout_ends_at_deadline(
    settings: Settings, stub: StubServer
) -> None:
    # Each byte arrives within the read timeout, so only the overall deadline can end it.
    tuned = stub_settings(settings, stub, http_read_timeout=1.0, http_request_deadline=0.8)
    stub.fault = "drip"
    stub.drip_interval = 0.1
    async with create_http_client(tuned) as client:
        fetcher = JsonFetcher(client, FetchPolicy.from_settings(tuned))
        error, elapsed = await _fails(fetcher, f"{stub.versions_url}/stable.json")
    assert isinstance(error, UpstreamUnreachable)
    assert "within 0.8s" in error.reason
    assert elapsed < 1.5


async def test_invalid_json_is_reported(fetcher: JsonFetcher, stub: StubServer) -> None:
    stub.fault = "invalid_json"
    error, _ = await _fails(fetcher, f"{stub.versions_url}/stable.json")
    assert error.reason.startswith("invalid JSON")


@pytest.mark.parametrize("fault", ["huge", "huge_undeclared"])
async def test_body_over_the_cap_is_refused(
    fetcher: JsonFetcher, stub: StubServer, fault: Any
) -> None:
    stub.fault = fault
    error, elapsed = await _fails(fetcher, f"{stub.versions_url}/stable.json")
    assert isinstance(error, ResponseTooLarge)
    assert str(fetcher.policy.max_bytes) in error.reason
    assert elapsed < 3


async def test_small_cap_applies_while_streaming(settings: Settings) -> None:
    with respx.mock:
        respx.get("https://example.test/big").respond(
            stream=httpx.ByteStream(b"[" + b"1," * 2000 + b"1]")
        )
        async with create_http_client(settings) as client:
            fetcher = JsonFetcher(client, FetchPolicy(max_bytes=1024))
            with pytest.raises(ResponseTooLarge):
                await fetcher.get_json("https://example.test/big")
