from __future__ import annotations

import re

import structlog
from fastapi import FastAPI
from fastapi.testclient import TestClient

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
        if method in {"post", "patch", "put"} and "requestBody" in op
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
