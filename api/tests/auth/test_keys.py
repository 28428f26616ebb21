"""Which keys the service accepts: from the environment, or generated and kept in the state dir."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from tests.support.damage import KINDS, damage, release_fifo
from tests.support.keys import ADMIN_KEY, MONITOR_KEY
from tests.support.offline import offline_settings
from vintagestory_api.__main__ import settings_error_message
from vintagestory_api.app import create_app
from vintagestory_api.config import Settings

ME = "/api/v1alpha1/auth/me"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("VS_API_KEY_ADMIN", raising=False)
    monkeypatch.delenv("VS_API_KEY_MONITOR", raising=False)
    return monkeypatch


@pytest.mark.parametrize("value", ["", "   "])
def test_empty_key_variables_are_unset(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, value: str
) -> None:
    clean_env.setenv("VS_API_KEY_ADMIN", value)
    clean_env.setenv("VS_API_KEY_MONITOR", value)
    settings = Settings(data_dir=tmp_path)
    assert settings.api_key_admin is None
    assert settings.api_key_monitor is None


def test_empty_admin_key_variable_generates_a_key_instead_of_locking_out(
    clean_env: pytest.MonkeyPatch, data_dir: Path
) -> None:
    offline = offline_settings(data_dir, admin_key=ADMIN_KEY, monitor_key=MONITOR_KEY)
    clean_env.setenv("VS_API_KEY_ADMIN", "")
    settings = Settings(**{k: v for k, v in offline.model_dump().items() if k != "api_key_admin"})
    assert settings.api_key_admin is None
    with TestClient(create_app(settings)) as client:
        key = (settings.state_dir / "admin-api-key").read_text().strip()
        assert client.get(ME, headers={"X-API-Key": key}).json()["data"]["role"] == "admin"
        # An empty header is no key at all, never a match for an empty admin key.
        assert client.get(ME, headers={"X-API-Key": ""}).status_code == 401


@pytest.mark.parametrize("variable", ["VS_API_KEY_ADMIN", "VS_API_KEY_MONITOR"])
def test_key_too_short_to_be_secret_stops_startup_naming_the_variable(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, variable: str
) -> None:
    clean_env.setenv(variable, "x" * 15)
    with pytest.raises(ValidationError) as info:
        Settings(data_dir=tmp_path)
    message = settings_error_message(info.value)
    assert variable in message
    assert "16" in message
    assert "x" * 15 not in message


def test_key_of_sixteen_characters_is_accepted(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("VS_API_KEY_ADMIN", " " + "a" * 16 + "\n")
    settings = Settings(data_dir=tmp_path)
    assert settings.api_key_admin is not None
    # Surrounding whitespace can never arrive in a header, so it is not part of the key.
    assert settings.api_key_admin.get_secret_value() == "a" * 16


@pytest.fixture
def keyless(data_dir: Path) -> Iterator[Settings]:
    offline = offline_settings(data_dir, admin_key=ADMIN_KEY, monitor_key=MONITOR_KEY)
    yield Settings(**{**offline.model_dump(), "api_key_admin": None})
    for path in data_dir.rglob("*"):
        if path.is_fifo():
            release_fifo(path)


@pytest.mark.parametrize("kind", [*KINDS, "short"])
def test_damaged_admin_key_file_is_set_aside_and_a_new_key_generated(
    keyless: Settings, kind: str
) -> None:
    key_file = keyless.state_dir / "admin-api-key"
    if kind == "short":
        key_file.write_text("abc123\n")
    else:
        damage(key_file, kind)
    with TestClient(create_app(keyless)) as client:
        new_key = key_file.read_text().strip()
        assert len(new_key) >= 32
        assert client.get(ME, headers={"X-API-Key": new_key}).status_code == 200
        if kind == "short":
            assert client.get(ME, headers={"X-API-Key": "abc123"}).status_code == 401
        health = client.get("/healthz").json()["data"]
    entry = health["state_files"]["admin-api-key"]
    assert entry["status"] == "degraded"
    assert str(key_file) in entry["reason"]
    assert "new key" in entry["reason"]
    assert health["status"] == "degraded"
    (kept,) = keyless.state_dir.glob("admin-api-key.corrupt-*")
    if kind == "short":
        assert kept.read_text() == "abc123\n"


def test_good_admin_key_file_is_reused_and_reported_ok(keyless: Settings) -> None:
    key_file = keyless.state_dir / "admin-api-key"
    key_file.write_text("k" * 40 + "\n")
    with TestClient(create_app(keyless)) as client:
        assert client.get(ME, headers={"X-API-Key": "k" * 40}).status_code == 200
        entry = client.get("/healthz").json()["data"]["state_files"]["admin-api-key"]
    assert entry["status"] == "ok"
    assert key_file.read_text() == "k" * 40 + "\n"
