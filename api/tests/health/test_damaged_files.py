"""Every state and cache file, damaged one at a time: the service starts and `/healthz` says so."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.support.damage import KINDS, damage, release_fifo
from tests.support.offline import BUILTIN_JOBS_OFF
from vintagestory_api.app import create_app
from vintagestory_api.config import Settings
from vintagestory_api.kit.state_files import write_json

STATE_FILES = (
    "api-settings.json",
    "job-state.json",
    "versions-cache.json",
    "mod-cache.json",
    "schedules.json",
)


@pytest.fixture
def fifo_guard(data_dir: Path) -> Iterator[None]:
    yield
    for path in data_dir.rglob("*"):
        if path.is_fifo():
            release_fifo(path)


@pytest.mark.usefixtures("fifo_guard")
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", STATE_FILES)
def test_damaged_state_file_is_set_aside_and_reported(
    settings: Settings, name: str, kind: str
) -> None:
    path = settings.state_dir / name
    damage(path, kind)
    with TestClient(create_app(settings)) as client:
        data = client.get("/healthz").json()["data"]
    assert data["status"] == "degraded"
    entry = data["state_files"][name]
    assert entry["status"] == "degraded"
    assert name in entry["reason"]
    assert "kept as" in entry["reason"]
    others = {key: value for key, value in data["state_files"].items() if key != name}
    assert all(value["status"] == "ok" for value in others.values()), others
    (kept,) = settings.state_dir.glob(f"{name}.corrupt-*")
    assert kept.is_dir() if kind == "directory" else kept.exists()


def test_healthz_lists_every_state_file_ok_on_a_clean_start(client: TestClient) -> None:
    data = client.get("/healthz").json()["data"]
    assert data["status"] == "ok"
    assert set(data["state_files"]) == {"admin-api-key", *STATE_FILES}
    assert all(entry["status"] == "ok" for entry in data["state_files"].values())


@pytest.mark.usefixtures("fifo_guard")
@pytest.mark.parametrize("kind", KINDS)
def test_damaged_backup_is_set_aside_so_the_next_change_is_saved(
    settings: Settings, admin_headers: dict[str, str], kind: str
) -> None:
    path = settings.state_dir / "api-settings.json"
    path.write_bytes(b"{broken")
    damage(settings.state_dir / "api-settings.json.bak", kind)
    with TestClient(create_app(settings)) as client:
        health = client.get("/healthz").json()["data"]["settings"]
        assert health["status"] == "degraded"
        response = client.patch(
            "/api/v1alpha1/config/api", headers=admin_headers, json=BUILTIN_JOBS_OFF
        )
        assert response.status_code == 200, response.text
        assert client.get("/healthz").json()["data"]["settings"]["status"] == "ok"
    assert (settings.state_dir / "api-settings.json").is_file()


def test_backup_that_becomes_a_directory_does_not_block_writes(
    settings: Settings, admin_headers: dict[str, str]
) -> None:
    with TestClient(create_app(settings)) as client:
        damage(settings.state_dir / "api-settings.json.bak", "directory")
        response = client.patch(
            "/api/v1alpha1/config/api", headers=admin_headers, json={"job_history_size": 7}
        )
        assert response.status_code == 200, response.text
        assert client.get("/healthz").json()["data"]["status"] == "ok"
    assert (settings.state_dir / "api-settings.json.bak").is_file()


@pytest.mark.usefixtures("fifo_guard")
@pytest.mark.parametrize("kind", KINDS)
def test_unreadable_installed_version_is_unknown_never_a_500(
    settings: Settings, admin_headers: dict[str, str], kind: str
) -> None:
    damage(settings.data_dir / "server" / "current_version", kind)
    with TestClient(create_app(settings)) as client:
        latest = client.get("/api/v1alpha1/versions/latest", headers=admin_headers)
        mods = client.get("/api/v1alpha1/mods", headers=admin_headers)
    assert latest.status_code == 200, latest.text
    assert latest.json()["data"]["installed"] is None
    assert mods.status_code == 200, mods.text
    assert mods.json()["data"]["game_version"] is None


def _block(path: Path) -> None:
    """Make the next write of `path` fail for real, as a read-only or full filesystem would:
    nothing can be renamed over a directory that is not empty."""
    path.unlink(missing_ok=True)
    path.mkdir()
    (path / "x").write_text("x")


def _unblock(path: Path) -> None:
    (path / "x").unlink()
    path.rmdir()


def test_failed_settings_write_degrades_health_until_a_write_succeeds(
    settings: Settings, admin_headers: dict[str, str]
) -> None:
    path = settings.state_dir / "api-settings.json"
    with TestClient(create_app(settings)) as client:
        _block(path)
        failed = client.patch(
            "/api/v1alpha1/config/api", headers=admin_headers, json={"job_history_size": 6}
        )
        assert failed.status_code == 500
        assert failed.json()["error"]["code"] == "STATE_WRITE_FAILED"
        data = client.get("/healthz").json()["data"]
        assert data["status"] == "degraded"
        assert data["settings"]["status"] == "degraded"
        assert "write failed" in data["state_files"]["api-settings.json"]["reason"]
        _unblock(path)
        saved = client.patch(
            "/api/v1alpha1/config/api", headers=admin_headers, json={"job_history_size": 6}
        )
        assert saved.status_code == 200, saved.text
        data = client.get("/healthz").json()["data"]
        assert data["status"] == "ok"
        assert data["state_files"]["api-settings.json"]["status"] == "ok"


@pytest.fixture
def one_job(settings: Settings) -> Settings:
    # One built-in job that exists but will not fire during the test.
    write_json(
        settings.state_dir / "api-settings.json",
        {**BUILTIN_JOBS_OFF, "metrics_collection_interval": 3600},
        keep_backup=False,
    )
    return settings


def test_failed_job_state_write_degrades_health_until_a_write_succeeds(
    one_job: Settings, admin_headers: dict[str, str]
) -> None:
    path = one_job.state_dir / "job-state.json"
    jobs = "/api/v1alpha1/jobs/metrics_collection"
    with TestClient(create_app(one_job)) as client:
        _block(path)
        failed = client.post(f"{jobs}/pause", headers=admin_headers)
        assert failed.status_code == 500
        assert failed.json()["error"]["code"] == "STATE_WRITE_FAILED"
        data = client.get("/healthz").json()["data"]
        assert data["settings"]["status"] == "degraded"
        assert "write failed" in data["state_files"]["job-state.json"]["reason"]
        _unblock(path)
        assert client.post(f"{jobs}/pause", headers=admin_headers).status_code == 200
        assert client.get("/healthz").json()["data"]["status"] == "ok"


def test_low_free_space_degrades_disk_health(settings: Settings) -> None:
    starved = Settings.model_validate({**settings.model_dump(), "min_free_disk_bytes": 2**62})
    with TestClient(create_app(starved)) as client:
        data = client.get("/healthz").json()["data"]
    assert data["status"] == "degraded"
    assert data["disk"]["status"] == "degraded"
    assert data["disk"]["min_free_bytes"] == 2**62
    assert "free" in data["disk"]["reason"]


def test_enough_free_space_keeps_disk_health_ok(client: TestClient) -> None:
    disk = client.get("/healthz").json()["data"]["disk"]
    assert disk["status"] == "ok"
    assert disk["reason"] is None
    assert disk["min_free_bytes"] == 512 * 1024 * 1024


def test_a_damaged_run_database_is_set_aside_and_reported(
    settings: Settings, data_dir: Path
) -> None:
    state = data_dir / "state"
    state.mkdir(parents=True, exist_ok=True)
    (state / "runs.db").write_bytes(b"this is not an SQLite database" * 100)

    with TestClient(create_app(settings)) as client:
        health = client.get("/healthz").json()["data"]

    assert health["status"] == "degraded"
    assert health["scheduler"]["run_history"]["status"] == "degraded"
    assert list(state.glob("runs.db.corrupt-*"))
