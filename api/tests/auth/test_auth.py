from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest
import structlog
from fastapi.testclient import TestClient
from pydantic import SecretStr

from tests.support.keys import ADMIN_KEY, MONITOR_KEY
from vintagestory_api.app import API_PREFIX, create_app
from vintagestory_api.auth.keys import ADMIN_KEY_FILE
from vintagestory_api.config import Settings


def test_auth_me_without_key_is_401_envelope(client: TestClient) -> None:
    response = client.get("/api/v1alpha1/auth/me")
    assert response.status_code == 401
    assert response.json() == {
        "status": "error",
        "error": {
            "code": "UNAUTHORIZED",
            "message": "missing or invalid API key in the X-API-Key header",
        },
    }


def test_auth_me_reports_admin_role(client: TestClient, admin_headers: dict[str, str]) -> None:
    response = client.get("/api/v1alpha1/auth/me", headers=admin_headers)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "data": {"role": "admin"}}


def test_auth_me_reports_monitor_role(client: TestClient, monitor_headers: dict[str, str]) -> None:
    response = client.get("/api/v1alpha1/auth/me", headers=monitor_headers)
    assert response.json()["data"] == {"role": "monitor"}


@pytest.mark.parametrize(
    "raw_key",
    [
        b"\xff\xff\xff",
        "ÿÿÿ".encode(),
        b"",
        b" ",
        ADMIN_KEY.encode() + b"x",
        ADMIN_KEY[:-1].encode(),
    ],
)
def test_wrong_or_non_ascii_key_is_401_never_500(client: TestClient, raw_key: bytes) -> None:
    response = client.get("/api/v1alpha1/auth/me", headers={"X-API-Key": raw_key})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UNAUTHORIZED"


def test_failed_auth_is_logged_with_client_and_without_key(client: TestClient) -> None:
    with structlog.testing.capture_logs() as logs:
        client.get("/api/v1alpha1/auth/me", headers={"X-API-Key": "guess-" + MONITOR_KEY})
    failures = [entry for entry in logs if entry["event"] == "auth_failed"]
    assert len(failures) == 1
    assert failures[0]["client"] == "testclient"
    assert all(MONITOR_KEY not in repr(entry) for entry in logs)


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def test_every_versioned_route_requires_a_key(client: TestClient) -> None:
    # The OpenAPI document lists every operation the app routes, however routers are nested.
    paths = client.get("/openapi.json").json()["paths"]
    operations = [
        (method, path)
        for path, ops in paths.items()
        if path.startswith(API_PREFIX)
        for method in ops
    ]
    assert ("get", f"{API_PREFIX}/auth/me") in operations
    for method, path in operations:
        response = client.request(method.upper(), _concrete(path), json={})
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["error"]["code"] == "UNAUTHORIZED"


def test_every_versioned_route_declares_the_api_key_scheme(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["ApiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "Admin or monitor API key",
    }
    for path, operations in schema["paths"].items():
        if path.startswith(API_PREFIX):
            for method, operation in operations.items():
                assert {"ApiKey": []} in operation.get("security", []), (method, path)


def test_missing_admin_key_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    key_file = settings.state_dir / ADMIN_KEY_FILE
    with structlog.testing.capture_logs() as logs, TestClient(create_app(settings)) as client:
        key = key_file.read_text().strip()
        assert len(key) >= 32
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        me = client.get("/api/v1alpha1/auth/me", headers={"X-API-Key": key})
        assert me.json()["data"]["role"] == "admin"
    generated = [entry for entry in logs if entry["event"] == "admin_api_key_generated"]
    assert generated
    assert generated[0]["path"] == str(key_file)
    assert all(key not in repr(entry) for entry in logs)

    with TestClient(create_app(Settings(data_dir=tmp_path / "data"))) as client:
        assert key_file.read_text().strip() == key
        me = client.get("/api/v1alpha1/auth/me", headers={"X-API-Key": key})
        assert me.status_code == 200


def test_monitor_role_is_off_without_monitor_key(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", api_key_admin=SecretStr(ADMIN_KEY))
    with TestClient(create_app(settings)) as client:
        response = client.get("/api/v1alpha1/auth/me", headers={"X-API-Key": MONITOR_KEY})
        assert response.status_code == 401
