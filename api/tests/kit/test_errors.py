from __future__ import annotations

import re

import pytest
import structlog
from fastapi import FastAPI
from fastapi.testclient import TestClient
from structlog.contextvars import merge_contextvars

from vintagestory_api.app import API_PREFIX


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def test_unknown_route_is_404_envelope(client: TestClient) -> None:
    response = client.get("/no/such/route")
    assert response.status_code == 404
    assert response.json() == {
        "status": "error",
        "error": {"code": "NOT_FOUND", "message": "no such route"},
    }


def test_wrong_method_is_405_envelope(client: TestClient) -> None:
    response = client.post("/healthz")
    assert response.status_code == 405
    body = response.json()
    assert body["status"] == "error"
    assert body["error"]["code"] == "METHOD_NOT_ALLOWED"


def test_malformed_json_on_every_body_route_is_422_naming_the_problem(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    body_operations = [
        (method, path)
        for path, ops in paths.items()
        if path.startswith(API_PREFIX)
        for method, op in ops.items()
        if method in {"post", "patch", "put"}
        # A multipart upload takes no JSON; it has its own tests.
        and "application/json" in op.get("requestBody", {}).get("content", {})
    ]
    assert body_operations, "no operation takes a JSON body"
    for method, path in body_operations:
        response = client.request(
            method.upper(),
            _concrete(path),
            content=b'{"interval_seconds": 5,',
            headers={**admin_headers, "Content-Type": "application/json"},
        )
        assert response.status_code == 422, (method, path, response.text)
        error = response.json()["error"]
        assert error["code"] == "VALIDATION_ERROR"
        assert "not valid JSON" in error["message"], error


def test_unexpected_exception_is_500_without_details(app: FastAPI) -> None:
    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals /etc/passwd")

    with (
        structlog.testing.capture_logs() as logs,
        TestClient(app, raise_server_exceptions=False) as client,
    ):
        response = client.get("/boom")
    assert response.status_code == 500
    assert response.json() == {
        "status": "error",
        "error": {"code": "INTERNAL_ERROR", "message": "internal server error"},
    }
    logged = [entry for entry in logs if entry["event"] == "unhandled_exception"]
    assert logged
    assert logged[0]["path"] == "/boom"
    assert logged[0]["log_level"] == "error"


def test_request_id_is_returned_and_caller_id_reused(client: TestClient) -> None:
    generated = client.get("/healthz").headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    echoed = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["X-Request-ID"] == "abc-123"
    unsafe = client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert unsafe.headers["X-Request-ID"] != "bad id\twith spaces"


def test_unexpected_exception_answer_and_log_line_carry_the_request_id(app: FastAPI) -> None:
    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("planted")

    with (
        structlog.testing.capture_logs(processors=[merge_contextvars]) as logs,
        TestClient(app) as client,
    ):
        response = client.get("/boom")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "INTERNAL_ERROR"
    request_id = response.headers["X-Request-ID"]
    logged = [entry for entry in logs if entry["event"] == "unhandled_exception"]
    assert len(logged) == 1, "logged once, with its traceback"
    assert logged[0]["request_id"] == request_id
    access = [entry for entry in logs if entry["event"] == "http_request"]
    assert access[-1]["status"] == 500
    assert access[-1]["request_id"] == request_id
    assert access[-1]["log_level"] == "error"


def test_client_errors_are_logged_at_info(client: TestClient) -> None:
    with structlog.testing.capture_logs() as logs:
        assert client.get("/no/such/route").status_code == 404
    access = [entry for entry in logs if entry["event"] == "http_request"]
    assert access[-1]["log_level"] == "info"


@pytest.mark.parametrize("path", ["/healthz/", f"{API_PREFIX}/jobs/", f"{API_PREFIX}/auth/me/"])
def test_trailing_slash_is_404_not_a_redirect(
    client: TestClient, admin_headers: dict[str, str], path: str
) -> None:
    # A redirect built from the caller's Host header pointed wherever the caller liked.
    response = client.get(
        path, headers={**admin_headers, "Host": "evil.example"}, follow_redirects=False
    )
    assert response.status_code == 404
    assert "location" not in response.headers
    assert response.json()["error"] == {
        "code": "NOT_FOUND",
        "message": "no such route; remove the trailing slash",
    }


def test_unknown_route_with_trailing_slash_is_a_plain_404(client: TestClient) -> None:
    response = client.get("/no/such/route/")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "no such route"


def test_many_unknown_fields_are_summarised_not_all_listed(
    client: TestClient, monitor_headers: dict[str, str]
) -> None:
    body = {"cron": "0 4 * * *", **{f"field_{i}": 1 for i in range(20_000)}}
    response = client.post(f"{API_PREFIX}/triggers/preview", json=body, headers=monitor_headers)
    assert response.status_code == 422
    message = response.json()["error"]["message"]
    assert len(message) < 1000, message[:200]
    assert "field_0: unknown field" in message
    assert "and 19990 more" in message


def test_a_long_field_name_is_not_echoed_whole(
    client: TestClient, monitor_headers: dict[str, str]
) -> None:
    body = {"cron": "0 4 * * *", "x" * 8000: 1}
    response = client.post(f"{API_PREFIX}/triggers/preview", json=body, headers=monitor_headers)
    assert response.status_code == 422
    message = response.json()["error"]["message"]
    assert len(message) < 300, message[:200]
    assert "…" in message


def test_a_long_unknown_query_parameter_is_not_echoed_whole(
    client: TestClient, monitor_headers: dict[str, str]
) -> None:
    response = client.get(
        f"{API_PREFIX}/auth/me", params={"q" * 5000: "1"}, headers=monitor_headers
    )
    assert response.status_code == 422
    message = response.json()["error"]["message"]
    assert len(message) < 300, message[:200]
    assert "…" in message
