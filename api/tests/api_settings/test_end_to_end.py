"""Operator settings and job control through the running service, as an admin uses them."""

from __future__ import annotations

import json
import signal
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.support.keys import ADMIN_KEY, MONITOR_KEY
from tests.support.server_process import ServerProcess
from vintagestory_api.api_settings.service import API_SETTINGS_FILE

CONFIG = "/api/v1alpha1/config/api"
JOBS = "/api/v1alpha1/jobs"
ADMIN = {"X-API-Key": ADMIN_KEY}


@pytest.fixture
def builtin_jobs_off() -> bool:
    # A fresh install: no settings file, every built-in job on its default interval.
    return False


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test", headers=ADMIN
        ) as client,
    ):
        yield client


def _job_ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [job["id"] for job in response.json()["data"]["jobs"]]


async def test_metrics_interval_reschedules_disables_and_reenables_its_job(
    http: httpx.AsyncClient,
) -> None:
    assert (await http.get(f"{JOBS}/metrics_collection")).json()["data"]["interval_seconds"] == 10

    patched = await http.patch(CONFIG, json={"metrics_collection_interval": 5})
    assert patched.status_code == 200, patched.text
    job = (await http.get(f"{JOBS}/metrics_collection")).json()["data"]
    assert job["interval_seconds"] == 5
    assert job["trigger_details"] == "every 5 seconds"
    next_run = datetime.fromisoformat(job["next_run_time"])
    assert next_run - datetime.now(UTC) <= timedelta(seconds=5)

    assert (await http.patch(CONFIG, json={"metrics_collection_interval": 0})).status_code == 200
    assert "metrics_collection" not in _job_ids(await http.get(JOBS))
    gone = await http.get(f"{JOBS}/metrics_collection")
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "JOB_NOT_FOUND"

    assert (await http.patch(CONFIG, json={"metrics_collection_interval": 10})).status_code == 200
    assert "metrics_collection" in _job_ids(await http.get(JOBS))
    job = (await http.get(f"{JOBS}/metrics_collection")).json()["data"]
    assert job["interval_seconds"] == 10
    assert job["trigger_details"] == "every 10 seconds"


# -- across a real restart ------------------------------------------------------------------


def _start(data_dir: Path) -> ServerProcess:
    return ServerProcess(
        data_dir,
        env={
            "VS_API_KEY_ADMIN": ADMIN_KEY,
            "VS_API_KEY_MONITOR": MONITOR_KEY,
            # The version check runs at startup; nothing may leave the machine. Port 9 on
            # loopback refuses at once.
            "VS_VERSIONS_URL": "http://127.0.0.1:9",
            "VS_MOD_API_URL": "http://127.0.0.1:9/api",
        },
    )


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.kill()


def _values(http: httpx.Client) -> dict[str, int]:
    response = http.get(CONFIG)
    assert response.status_code == 200, response.text
    return {key: info["value"] for key, info in response.json()["data"]["settings"].items()}


def _jobs(http: httpx.Client) -> dict[str, dict[str, Any]]:
    response = http.get(JOBS)
    assert response.status_code == 200, response.text
    return {job["id"]: job for job in response.json()["data"]["jobs"]}


def _ok(response: httpx.Response) -> httpx.Response:
    assert response.is_success, response.text
    return response


def test_settings_pauses_and_deletions_survive_a_sigterm_restart(
    tmp_path: Path, servers: list[ServerProcess]
) -> None:
    data_dir = tmp_path / "data"
    first = _start(data_dir)
    servers.append(first)
    first.wait_healthy()
    with httpx.Client(base_url=first.base_url, headers=ADMIN, timeout=5) as http:
        _ok(http.patch(CONFIG, json={"metrics_collection_interval": 5}))
        # A job PATCH on a built-in job is its setting: both views show the new value.
        _ok(http.patch(f"{JOBS}/mod_cache_refresh", json={"interval_seconds": 3600}))
        _ok(http.post(f"{JOBS}/mod_cache_refresh/pause"))
        # Deleting a built-in job sets its interval to 0.
        _ok(http.delete(f"{JOBS}/server_versions_check"))
        before_values = _values(http)
        before_jobs = _jobs(http)
    assert before_values["metrics_collection_interval"] == 5
    assert before_values["mod_list_refresh_interval"] == 3600
    assert before_values["server_versions_refresh_interval"] == 0
    assert set(before_jobs) == {"metrics_collection", "mod_cache_refresh"}
    assert before_jobs["mod_cache_refresh"]["paused"]
    assert before_jobs["mod_cache_refresh"]["next_run_time"] is None
    file_before = (data_dir / "state" / API_SETTINGS_FILE).read_bytes()

    first.signal(signal.SIGTERM)
    assert first.wait_exit() == 0

    second = _start(data_dir)
    servers.append(second)
    second.wait_healthy()
    with httpx.Client(base_url=second.base_url, headers=ADMIN, timeout=5) as http:
        assert _values(http) == before_values
        after_jobs = _jobs(http)
    assert set(after_jobs) == set(before_jobs), "a deleted built-in job came back"
    for job_id, before in before_jobs.items():
        after = after_jobs[job_id]
        assert (after["interval_seconds"], after["paused"]) == (
            before["interval_seconds"],
            before["paused"],
        ), job_id
    assert after_jobs["mod_cache_refresh"]["next_run_time"] is None
    assert after_jobs["metrics_collection"]["next_run_time"] is not None
    # Startup only reads the settings; it does not rewrite them.
    assert (data_dir / "state" / API_SETTINGS_FILE).read_bytes() == file_before
    assert json.loads(file_before)["server_versions_refresh_interval"] == 0
