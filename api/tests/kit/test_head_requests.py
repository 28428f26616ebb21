"""HEAD is answered wherever GET is: same status and headers, no body, the key check included."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from vintagestory_api.app import API_PREFIX


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def _get_operations(client: TestClient) -> list[str]:
    paths = client.get("/openapi.json").json()["paths"]
    return [_concrete(path) for path, ops in paths.items() if "get" in ops]


def test_head_is_answered_like_get_on_every_get_route(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    paths = [*_get_operations(client), "/docs", "/openapi.json"]
    assert f"{API_PREFIX}/jobs" in paths
    for path in paths:
        get = client.get(path, headers=admin_headers)
        head = client.head(path, headers=admin_headers)
        assert head.status_code == get.status_code, (path, head.text)
        assert head.content == b"", path
        assert head.headers["content-type"] == get.headers["content-type"], path


def test_head_needs_a_key_under_the_api_prefix(
    client: TestClient, monitor_headers: dict[str, str]
) -> None:
    assert client.head(f"{API_PREFIX}/auth/me").status_code == 401
    assert client.head(f"{API_PREFIX}/auth/me", headers=monitor_headers).status_code == 200
    assert client.head(f"{API_PREFIX}/jobs", headers=monitor_headers).status_code == 403


def test_head_of_healthz_has_the_length_of_its_get(client: TestClient) -> None:
    get = client.get("/healthz")
    head = client.head("/healthz")
    assert head.status_code == 200
    assert head.headers["content-length"] == get.headers["content-length"]


def test_head_on_a_route_without_get_is_405(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    response = client.head(f"{API_PREFIX}/jobs/x/run", headers=admin_headers)
    assert response.status_code == 405


def test_openapi_lists_no_head_operations(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert all("head" not in ops for ops in paths.values())


def test_head_is_counted_under_its_route(client: TestClient) -> None:
    assert client.head("/healthz").status_code == 200
    metrics = client.get("/metrics").text
    assert 'vsapi_http_requests_total{method="HEAD",route="/healthz",status="2xx"} 1.0' in metrics
