"""Test helpers for the versions and mods features: settings aimed at the stub, mod archives,
and the app running its real lifespan in the test's event loop."""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from pydantic import AnyHttpUrl

from tests.support.keys import ADMIN_KEY
from tests.support.stub_server import FIXTURES, StubServer
from vintagestory_api.api_settings.schemas import NETWORK_JOB_MIN_SECONDS
from vintagestory_api.api_settings.service import API_SETTINGS_FILE
from vintagestory_api.app import create_app
from vintagestory_api.config import Settings
from vintagestory_api.kit.state_files import write_json
from vintagestory_api.mods.service import ModsService
from vintagestory_api.versions.service import VersionsService

ADMIN = {"X-API-Key": ADMIN_KEY}
JOBS = "/api/v1alpha1/jobs"
VERSIONS_JOB = "server_versions_check"
MODS_JOB = "mod_cache_refresh"

# Short enough that every fault test ends in about a second.
FAST_HTTP: dict[str, Any] = {
    "http_connect_timeout": 0.5,
    "http_read_timeout": 0.5,
    "http_request_deadline": 3.0,
    "http_retries": 1,
    "http_retry_backoff": 0.01,
}


def stub_settings(settings: Settings, stub: StubServer, **overrides: Any) -> Settings:
    return settings.model_copy(
        update={
            "versions_url": AnyHttpUrl(stub.versions_url),
            "mod_api_url": AnyHttpUrl(stub.mod_api_url),
            **FAST_HTTP,
            **overrides,
        }
    )


def mod_zip(path: Path, modinfo: bytes | str, extra: dict[str, bytes] | None = None) -> Path:
    """A mod archive with `modinfo` as its `modinfo.json`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("modinfo.json", modinfo)
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    path.write_bytes(buffer.getvalue())
    return path


def install_fixture_mods(data_dir: Path, game_version: str | None) -> Path:
    """Carry On 1.12.1 and smex 0.9.4 as zips, and the installed game version."""
    mods_dir = data_dir / "serverdata" / "Mods"
    mod_zip(mods_dir / "CarryOn-1.21.0_v1.12.1.zip", (FIXTURES / "modinfo.json").read_bytes())
    mod_zip(mods_dir / "smex_0.9.4.zip", (FIXTURES / "modinfo-smex.json").read_bytes())
    if game_version is not None:
        set_game_version(data_dir, game_version)
    return mods_dir


def set_game_version(data_dir: Path, version: str) -> None:
    (data_dir / "server").mkdir(parents=True, exist_ok=True)
    (data_dir / "server" / "current_version").write_text(version + "\n")


@asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app with its real lifespan (which builds the versions and mods services), and a
    client talking to it in this event loop."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield app, client


def versions_of(app: FastAPI) -> VersionsService:
    service: VersionsService = app.state.versions
    return service


def mods_of(app: FastAPI) -> ModsService:
    service: ModsService = app.state.mods
    return service


def write_api_settings(data_dir: Path, **values: int) -> None:
    """The operator settings file with both network jobs on at their shortest interval (the
    version check still runs once right after startup) and metrics sampling off."""
    write_json(
        data_dir / "state" / API_SETTINGS_FILE,
        {
            "server_versions_refresh_interval": NETWORK_JOB_MIN_SECONDS,
            "mod_list_refresh_interval": NETWORK_JOB_MIN_SECONDS,
            "metrics_collection_interval": 0,
            **values,
        },
        keep_backup=False,
    )


def find_run(client: httpx.Client, job_id: str, run_id: str | None = None) -> dict[str, Any] | None:
    """The run `run_id` (default: the job's newest) from GET /jobs/{id}/runs, or None."""
    response = client.get(f"{JOBS}/{job_id}/runs")
    assert response.status_code == 200, response.text
    runs: list[dict[str, Any]] = response.json()["data"]["runs"]
    return next((run for run in runs if run_id is None or run["run_id"] == run_id), None)


def wait_for_run(
    client: httpx.Client, job_id: str, run_id: str | None = None, timeout: float = 10
) -> dict[str, Any]:
    """The run `run_id` (default: the job's newest) once it has finished, polled over the API."""
    deadline = time.monotonic() + timeout
    run = None
    while time.monotonic() < deadline:
        run = find_run(client, job_id, run_id)
        if run is not None and run["outcome"] != "running":
            return run
        time.sleep(0.02)
    raise AssertionError(f"{job_id} run {run_id or '(newest)'} unfinished after {timeout}s: {run}")


def run_now(client: httpx.Client, job_id: str) -> str:
    """POST /jobs/{id}/run; the new run's id."""
    response = client.post(f"{JOBS}/{job_id}/run")
    assert response.status_code == 202, response.text
    run_id: str = response.json()["data"]["run_id"]
    return run_id


def run_to_end(client: httpx.Client, job_id: str, timeout: float = 10) -> dict[str, Any]:
    """Run a job now through the API and wait for the run to finish."""
    return wait_for_run(client, job_id, run_now(client, job_id), timeout)
