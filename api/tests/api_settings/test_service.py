from __future__ import annotations

import asyncio
import json
import os
import random
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from structlog.testing import capture_logs

from vintagestory_api.api_settings.errors import ApiSettingInvalid, ApiSettingUnknown
from vintagestory_api.api_settings.schemas import ApiSettings
from vintagestory_api.api_settings.service import API_SETTINGS_FILE, ApiSettingsService
from vintagestory_api.app import create_app
from vintagestory_api.auth.keys import Role
from vintagestory_api.config import Settings
from vintagestory_api.errors import StateWriteFailed
from vintagestory_api.kit.state_files import write_json


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / API_SETTINGS_FILE


def test_missing_file_gives_defaults_and_ok_health(path: Path) -> None:
    service = ApiSettingsService.load(path)
    assert service.settings == ApiSettings()
    assert service.health.status == "ok"
    assert not path.exists()


async def test_patch_writes_file_and_notifies_listeners_in_order(path: Path) -> None:
    service = ApiSettingsService.load(path)
    seen: list[tuple[int, int]] = []

    async def listener(old: ApiSettings, new: ApiSettings) -> None:
        seen.append((old.metrics_collection_interval, new.metrics_collection_interval))

    service.add_listener(listener)
    with capture_logs() as logs:
        await service.patch({"metrics_collection_interval": 5}, role=Role.ADMIN)
        await service.patch({"metrics_collection_interval": 0}, role=Role.ADMIN)
    assert seen == [(10, 5), (5, 0)]
    assert json.loads(path.read_text())["metrics_collection_interval"] == 0
    changed = [entry for entry in logs if entry["event"] == "api_settings_changed"]
    assert changed[0]["role"] == "admin"
    assert changed[0]["changes"] == {"metrics_collection_interval": {"old": 10, "new": 5}}


async def test_failing_listener_does_not_undo_the_change(path: Path) -> None:
    service = ApiSettingsService.load(path)

    async def broken(old: ApiSettings, new: ApiSettings) -> None:
        raise RuntimeError("scheduler said no")

    service.add_listener(broken)
    with capture_logs() as logs:
        await service.patch({"job_history_size": 10}, role=Role.ADMIN)
    assert service.settings.job_history_size == 10
    assert any(entry["event"] == "api_settings_apply_failed" for entry in logs)


@pytest.mark.parametrize(
    ("changes", "error", "needle"),
    [
        ({"nope": 1}, ApiSettingUnknown, "nope"),
        ({"metrics_collection_interval": True}, ApiSettingInvalid, "valid integer"),
        ({"metrics_collection_interval": "x"}, ApiSettingInvalid, "valid integer"),
        ({"metrics_collection_interval": 5.0}, ApiSettingInvalid, "valid integer"),
        ({"metrics_collection_interval": None}, ApiSettingInvalid, "valid integer"),
        ({"mod_list_refresh_interval": -1}, ApiSettingInvalid, "greater than or equal to 0"),
        ({"mod_list_refresh_interval": 59}, ApiSettingInvalid, "at least 60"),
        ({"metrics_collection_interval": 3601}, ApiSettingInvalid, "less than or equal"),
        ({"job_history_size": 0}, ApiSettingInvalid, "greater than or equal to 1"),
        ({"job_history_size": 10, "nope": 1}, ApiSettingUnknown, "nope"),
        ({"job_history_size": 10, "default_job_timeout_seconds": 0}, ApiSettingInvalid, "default"),
    ],
)
async def test_invalid_patch_changes_nothing(
    path: Path, changes: dict[str, object], error: type[Exception], needle: str
) -> None:
    service = ApiSettingsService.load(path)
    await service.patch({"job_history_size": 20}, role=Role.ADMIN)
    before = path.read_bytes()
    with pytest.raises(error) as info:
        await service.patch(changes, role=Role.ADMIN)
    assert needle in str(info.value)
    assert path.read_bytes() == before
    assert service.settings.job_history_size == 20


async def test_fifty_concurrent_patches_lose_no_update(path: Path) -> None:
    service = ApiSettingsService.load(path)
    keys = ["metrics_collection_interval", "job_history_size", "default_job_timeout_seconds"]
    rng = random.Random(7)
    patches = [{keys[i % 3]: rng.randint(1, 900)} for i in range(50)]
    # Each patch is one task started in list order; the lock serves them first come, first served.
    await asyncio.gather(*(service.patch(p, role=Role.ADMIN) for p in patches))
    expected = {key: next(p[key] for p in reversed(patches) if key in p) for key in keys}
    on_disk = json.loads(path.read_text())
    assert {key: on_disk[key] for key in keys} == expected
    assert {key: getattr(service.settings, key) for key in keys} == expected


async def test_cancelled_patch_still_completes_file_and_memory_together(path: Path) -> None:
    service = ApiSettingsService.load(path)
    task = asyncio.create_task(service.patch({"job_history_size": 7}, role=Role.ADMIN))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await service.patch({}, role=Role.ADMIN)  # queued behind the first; waits for it
    assert service.settings.job_history_size == 7
    assert json.loads(path.read_text())["job_history_size"] == 7


async def test_write_failure_raises_and_keeps_old_values(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = ApiSettingsService.load(path)

    def full_disk(*_: object, **__: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("vintagestory_api.api_settings.service.write_json", full_disk)
    with pytest.raises(StateWriteFailed, match="No space"):
        await service.patch({"job_history_size": 7}, role=Role.ADMIN)
    assert service.settings.job_history_size == 50


async def test_unknown_keys_in_file_are_kept_on_write_and_logged(path: Path) -> None:
    write_json(path, {"job_history_size": 9, "future_setting": {"a": [1, 2]}})
    with capture_logs() as logs:
        service = ApiSettingsService.load(path)
    warning = next(entry for entry in logs if entry["event"] == "api_settings_unknown_keys")
    assert warning["keys"] == ["future_setting"]
    assert warning["log_level"] == "warning"
    assert service.health.status == "ok"
    assert service.unknown_keys == ["future_setting"]
    await service.patch({"job_history_size": 10}, role=Role.ADMIN)
    on_disk = json.loads(path.read_text())
    assert on_disk["future_setting"] == {"a": [1, 2]}
    assert on_disk["job_history_size"] == 10


def test_file_missing_keys_take_defaults(path: Path) -> None:
    write_json(path, {"job_history_size": 9})
    service = ApiSettingsService.load(path)
    assert service.settings == ApiSettings(job_history_size=9)
    assert service.health.status == "ok"


BAD_FILES: dict[str, bytes] = {
    "empty": b"",
    "truncated": b'{"metrics_collection_interval": 5, "job_hist',
    "not_utf8": b'{"metrics_collection_interval": \xff\xfe}',
    "not_json": b"metrics_collection_interval = 5\n",
    "nan": b'{"metrics_collection_interval": NaN}',
    "infinity": b'{"metrics_collection_interval": Infinity}',
    "huge_number": b'{"metrics_collection_interval": ' + b"9" * 400 + b"}",
    "huge_float": b'{"metrics_collection_interval": 1e400}',
    "deep_nesting": b'{"x": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    "wrong_type": b'{"metrics_collection_interval": "5"}',
    "bool": b'{"metrics_collection_interval": true}',
    "not_an_object": b"[1, 2, 3]",
    "out_of_bounds": b'{"mod_list_refresh_interval": -5}',
    "too_large": b'{"pad": "' + b"x" * (1024 * 1024 + 1) + b'"}',
}


def _kept_files(state_dir: Path) -> list[Path]:
    return sorted(state_dir.glob(f"{API_SETTINGS_FILE}.corrupt-*"))


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_service_starts_on_bad_file_with_defaults_and_keeps_it(
    case: str, settings: Settings, admin_headers: dict[str, str]
) -> None:
    path = settings.state_dir / API_SETTINGS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(BAD_FILES[case])
    with capture_logs() as logs, TestClient(create_app(settings)) as client:
        health = client.get("/healthz").json()["data"]["settings"]
        values = client.get("/api/v1alpha1/config/api", headers=admin_headers).json()["data"]
        assert health["status"] == "degraded"
        assert API_SETTINGS_FILE in health["reason"]
        assert "defaults" in health["reason"]
        assert values["settings"]["metrics_collection_interval"]["value"] == 10
        (kept,) = _kept_files(settings.state_dir)
        assert kept.read_bytes() == BAD_FILES[case]
        corrupt = next(entry for entry in logs if entry["event"] == "api_settings_corrupt")
        assert corrupt["log_level"] == "error"
        assert corrupt["reason"]
        # The next successful write clears the degraded state.
        response = client.patch(
            "/api/v1alpha1/config/api", headers=admin_headers, json={"job_history_size": 5}
        )
        assert response.status_code == 200
        assert client.get("/healthz").json()["data"]["settings"]["status"] == "ok"
    assert kept.read_bytes() == BAD_FILES[case]


@pytest.mark.parametrize("case", ["truncated", "nan", "out_of_bounds"])
def test_bad_file_falls_back_to_valid_backup(
    case: str, settings: Settings, admin_headers: dict[str, str]
) -> None:
    path = settings.state_dir / API_SETTINGS_FILE
    write_json(path, {"metrics_collection_interval": 7})
    write_json(path, {"metrics_collection_interval": 8})
    path.write_bytes(BAD_FILES[case])
    with TestClient(create_app(settings)) as client:
        health = client.get("/healthz").json()["data"]["settings"]
        values = client.get("/api/v1alpha1/config/api", headers=admin_headers).json()["data"]
    assert health["status"] == "degraded"
    assert "backup" in health["reason"]
    assert values["settings"]["metrics_collection_interval"]["value"] == 7
    (kept,) = _kept_files(settings.state_dir)
    assert kept.read_bytes() == BAD_FILES[case]


def test_values_survive_a_restart(settings: Settings, admin_headers: dict[str, str]) -> None:
    with TestClient(create_app(settings)) as client:
        response = client.patch(
            "/api/v1alpha1/config/api",
            headers=admin_headers,
            json={"metrics_collection_interval": 5, "mod_list_refresh_interval": 0},
        )
        assert response.status_code == 200
    with TestClient(create_app(settings)) as client:
        data = client.get("/api/v1alpha1/config/api", headers=admin_headers).json()["data"]
        assert client.get("/healthz").json()["data"]["settings"] == {"status": "ok", "reason": None}
    assert data["settings"]["metrics_collection_interval"]["value"] == 5
    assert data["settings"]["mod_list_refresh_interval"]["value"] == 0
    assert os.stat(settings.state_dir / API_SETTINGS_FILE).st_mode & 0o077 == 0
