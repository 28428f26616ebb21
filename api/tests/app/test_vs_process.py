"""The version and mod caches across a real restart of the served process (`python -m
vintagestory_api`), with the upstream APIs gone the second time."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.keys import ADMIN_KEY
from tests.support.server_process import ServerProcess
from tests.support.stub_server import StubServer
from tests.support.vs_wiring import (
    ADMIN,
    JOBS,
    MODS_JOB,
    VERSIONS_JOB,
    install_fixture_mods,
    run_to_end,
    wait_for_run,
    write_api_settings,
)

LATEST = "/api/v1alpha1/versions/latest"
VERSIONS = "/api/v1alpha1/versions"
MODS = "/api/v1alpha1/mods"


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.kill()


def _start(data_dir: Path, stub: StubServer, servers: list[ServerProcess]) -> ServerProcess:
    server = ServerProcess(
        data_dir,
        env={
            "VS_API_KEY_ADMIN": ADMIN_KEY,
            "VS_VERSIONS_URL": stub.versions_url,
            "VS_MOD_API_URL": stub.mod_api_url,
            "VS_HTTP_CONNECT_TIMEOUT": "0.5",
            "VS_HTTP_READ_TIMEOUT": "1",
            "VS_HTTP_REQUEST_DEADLINE": "3",
            "VS_HTTP_RETRIES": "1",
            "VS_HTTP_RETRY_BACKOFF": "0.05",
            "VS_TIMEZONE": "UTC",
        },
    )
    servers.append(server)
    return server


def _stop(server: ServerProcess) -> None:
    server.signal(signal.SIGTERM)
    assert server.wait_exit(timeout=20) == 0


def _smex(api: httpx.Client) -> dict[str, Any]:
    mods = api.get(MODS).json()["data"]["mods"]
    moddb: dict[str, Any] = next(m for m in mods if m["modid"] == "smex")["moddb"]
    return moddb


def test_restart_with_the_stub_down_serves_cached_versions_and_mods_at_once(
    tmp_path: Path, servers: list[ServerProcess]
) -> None:
    data_dir = tmp_path / "data"
    write_api_settings(data_dir)
    install_fixture_mods(data_dir, game_version="1.22.3")

    with StubServer.running() as stub:
        first = _start(data_dir, stub, servers)
        first.wait_healthy()
        with httpx.Client(base_url=first.base_url, headers=ADMIN, timeout=5) as api:
            first_runs = {job: wait_for_run(api, job) for job in (VERSIONS_JOB, MODS_JOB)}
            assert {run["outcome"] for run in first_runs.values()} == {"succeeded"}
            cached_stable = api.get(VERSIONS).json()["data"]["versions"]
        _stop(first)
        stub.stop()

        second = _start(data_dir, stub, servers)
        second.wait_healthy()
        with httpx.Client(base_url=second.base_url, headers=ADMIN, timeout=5) as api:
            started = time.monotonic()
            latest = api.get(LATEST).json()["data"]
            assert time.monotonic() - started < 1.0
            assert (latest["stable"], latest["unstable"]) == ("1.22.7", "1.22.7-rc.1")
            assert (latest["installed"], latest["update_available"]) == ("1.22.3", True)
            assert api.get(VERSIONS).json()["data"]["versions"] == cached_stable
            smex = _smex(api)
            assert (smex["latest_version"], smex["update_available"]) == ("0.9.6", True)

            # Restarted within minutes of the last check: the startup checks are spaced out (a
            # crash loop must not hammer the public APIs) instead of running at once.
            jobs = {job["id"]: job for job in api.get(JOBS).json()["data"]["jobs"]}
            for job_id in (VERSIONS_JOB, MODS_JOB):
                # The run history survived the restart; no new run yet.
                assert jobs[job_id]["last_run"]["run_id"] == first_runs[job_id]["run_id"]
                assert jobs[job_id]["next_run_time"] is not None
            # A check now meets the dead stub: it fails, says why, and keeps the cache.
            startup = run_to_end(api, VERSIONS_JOB)
            assert startup["outcome"] == "failed", startup
            assert "connection failed" in startup["error"]["message"]
            assert api.get(LATEST).json()["data"]["stable"] == "1.22.7"
            listing = api.get(VERSIONS).json()["data"]
            assert listing["versions"] == cached_stable
            assert listing["last_check"]["status"] == "failed"
            refresh = run_to_end(api, MODS_JOB)
            assert refresh["outcome"] == "failed", refresh
            assert _smex(api)["latest_version"] == "0.9.6"
        _stop(second)
