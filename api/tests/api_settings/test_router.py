from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from structlog.testing import capture_logs

from vintagestory_api.api_settings.schemas import ApiSettings
from vintagestory_api.api_settings.service import API_SETTINGS_FILE
from vintagestory_api.app import API_PREFIX
from vintagestory_api.config import Settings

URL = "/api/v1alpha1/config/api"


@pytest.fixture
def builtin_jobs_off() -> bool:
    # These tests start from no settings file at all, as a fresh install does.
    return False


def _file(settings: Settings) -> Path:
    return settings.state_dir / API_SETTINGS_FILE


def test_get_lists_every_setting_with_value_default_and_bounds(
    client: TestClient, monitor_headers: dict[str, str]
) -> None:
    response = client.get(URL, headers=monitor_headers)
    assert response.status_code == 200
    settings = response.json()["data"]["settings"]
    assert list(settings) == list(ApiSettings.model_fields)
    assert settings["mod_list_refresh_interval"] == {
        "value": 14400,
        "default": 14400,
        "description": ApiSettings.model_fields["mod_list_refresh_interval"].description,
        "minimum": 0,
        "maximum": 7 * 24 * 3600,
        "minimum_when_enabled": 60,
        "unit": "seconds",
    }
    assert settings["metrics_collection_interval"]["minimum_when_enabled"] == 1
    assert settings["job_history_size"]["minimum"] == 1
    assert settings["job_history_size"]["minimum_when_enabled"] is None
    for info in settings.values():
        if isinstance(info["default"], bool | str):
            # An on/off setting, or a crontab, has no bounds.
            assert info["minimum"] is None
            assert info["maximum"] is None
        else:
            assert info["minimum"] <= info["default"] <= info["maximum"]
        assert info["description"]


def test_patch_returns_new_settings_and_writes_the_file(
    client: TestClient, settings: Settings, admin_headers: dict[str, str]
) -> None:
    response = client.patch(URL, headers=admin_headers, json={"metrics_collection_interval": 5})
    assert response.status_code == 200
    assert response.json()["data"]["settings"]["metrics_collection_interval"]["value"] == 5
    assert json.loads(_file(settings).read_text())["metrics_collection_interval"] == 5
    again = client.get(URL, headers=admin_headers).json()["data"]["settings"]
    assert again["metrics_collection_interval"]["value"] == 5


def test_monitor_may_read_but_not_patch(
    client: TestClient, settings: Settings, monitor_headers: dict[str, str]
) -> None:
    response = client.patch(URL, headers=monitor_headers, json={"metrics_collection_interval": 5})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "FORBIDDEN"
    assert not _file(settings).exists()


def test_patch_without_key_is_401(client: TestClient) -> None:
    assert client.patch(URL, json={}).status_code == 401


def test_many_unknown_settings_are_summarised_not_all_listed(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    body = {f"nope_{i:05d}": 1 for i in range(20_000)}
    response = client.patch(URL, headers=admin_headers, json=body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "API_SETTING_UNKNOWN"
    assert len(error["message"]) < 1000, error["message"][:300]
    assert "nope_00000" in error["message"]
    assert "and 19990 more" in error["message"]
    # The known settings are still named, so the caller can fix the request.
    assert "job_history_size" in error["message"]


def test_a_long_unknown_setting_is_not_echoed_whole(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    response = client.patch(URL, headers=admin_headers, json={"k" * 8000: 1})
    assert response.status_code == 422
    message = response.json()["error"]["message"]
    # The known settings are listed in full; the unknown key only as a clipped echo.
    known = ", ".join(ApiSettings.model_fields)
    assert len(message) < len(known) + 200, message[:300]
    assert "…" in message


@pytest.mark.parametrize(
    ("body", "code", "needles"),
    [
        ({"mod_list_refresh_interval": -1}, "API_SETTING_INVALID", ["mod_list_refresh_interval"]),
        ({"nope": 1}, "API_SETTING_UNKNOWN", ["nope"]),
        (
            {"metrics_collection_interval": "x"},
            "API_SETTING_INVALID",
            ["metrics_collection_interval", "integer"],
        ),
        (
            {"metrics_collection_interval": True},
            "API_SETTING_INVALID",
            ["metrics_collection_interval", "integer"],
        ),
        (
            {"metrics_collection_interval": 5, "server_versions_refresh_interval": 10},
            "API_SETTING_INVALID",
            ["server_versions_refresh_interval", "at least 60"],
        ),
    ],
)
def test_invalid_patch_is_422_and_leaves_file_byte_for_byte(
    client: TestClient,
    settings: Settings,
    admin_headers: dict[str, str],
    body: dict[str, Any],
    code: str,
    needles: list[str],
) -> None:
    assert (
        client.patch(URL, headers=admin_headers, json={"job_history_size": 20}).status_code == 200
    )
    before = _file(settings).read_bytes()
    response = client.patch(URL, headers=admin_headers, json=body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == code
    for needle in needles:
        assert needle in error["message"]
    assert _file(settings).read_bytes() == before


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b'"text"', b"5", b""])
def test_malformed_or_non_object_body_is_422_envelope(
    client: TestClient, settings: Settings, admin_headers: dict[str, str], content: bytes
) -> None:
    response = client.patch(
        URL, headers={**admin_headers, "Content-Type": "application/json"}, content=content
    )
    assert response.status_code == 422
    assert response.json()["status"] == "error"
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert not _file(settings).exists()


async def test_fifty_concurrent_patches_over_http_keep_the_last_value_of_each(
    app: FastAPI, settings: Settings, admin_headers: dict[str, str]
) -> None:
    keys = ["metrics_collection_interval", "job_history_size", "metrics_retention_minutes"]
    bodies = [{keys[i % 3]: 100 + i} for i in range(50)]
    written: list[dict[str, int]] = []

    async def record(old: ApiSettings, new: ApiSettings) -> None:
        written.append({k: getattr(new, k) for k in keys if getattr(new, k) != getattr(old, k)})

    async with app.router.lifespan_context(app):
        app.state.api_settings.add_listener(record)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            responses = await asyncio.gather(
                *(client.patch(URL, headers=admin_headers, json=body) for body in bodies)
            )
            view = (await client.get(URL, headers=admin_headers)).json()["data"]["settings"]
            job = await client.get(f"{API_PREFIX}/jobs/metrics_collection", headers=admin_headers)
    assert all(r.status_code == 200 for r in responses)
    # Every value sent is distinct, so each write changed exactly its one key; the order of the
    # writes (the listener runs under the lock) defines "last", which the file must hold.
    assert sorted(map(str, written)) == sorted(map(str, bodies))
    on_disk = json.loads(_file(settings).read_text())
    for key in keys:
        last = next(change[key] for change in reversed(written) if key in change)
        assert on_disk[key] == last
        assert view[key]["value"] == last
    # The live scheduler followed the last write too, not an earlier one.
    assert job.json()["data"]["interval_seconds"] == on_disk["metrics_collection_interval"]


def test_openapi_documents_the_patch_body_and_errors(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"][URL]["patch"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == set(ApiSettings.model_fields)
    assert {"403", "422"} <= set(operation["responses"])


def _snapshot(*paths: Path) -> dict[Path, tuple[bytes, int, int]]:
    # A write replaces the file (new inode) and rotates the backup, so the inode tells even a
    # rewrite with identical bytes apart.
    return {p: (p.read_bytes(), p.stat().st_ino, p.stat().st_mtime_ns) for p in paths}


@pytest.mark.parametrize("body", ["empty", "every_value_as_it_is"])
def test_patch_that_changes_nothing_leaves_file_and_backup_untouched(
    client: TestClient, settings: Settings, admin_headers: dict[str, str], body: str
) -> None:
    assert client.patch(URL, headers=admin_headers, json={"job_history_size": 5}).is_success
    assert client.patch(URL, headers=admin_headers, json={"job_history_size": 6}).is_success
    path = _file(settings)
    backup = path.with_name(path.name + ".bak")
    before = _snapshot(path, backup)
    current = client.get(URL, headers=admin_headers).json()["data"]["settings"]
    payload = {} if body == "empty" else {key: info["value"] for key, info in current.items()}
    with capture_logs() as logs:
        response = client.patch(URL, headers=admin_headers, json=payload)
    assert response.status_code == 200
    assert response.json()["data"]["settings"]["job_history_size"]["value"] == 6
    assert _snapshot(path, backup) == before
    assert json.loads(backup.read_text())["job_history_size"] == 5
    assert not [entry for entry in logs if entry["event"] == "api_settings_changed"]
