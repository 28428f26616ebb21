"""The version and mod checks end to end: the real lifespan registers the built-in jobs from the
settings file, the real scheduler runs them against a stub of the Vintage Story APIs on
127.0.0.1, and everything is observed through the HTTP API, as an admin would."""

from __future__ import annotations

import json
import re
import statistics
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.support.stub_server import FIXTURES, Fault, StubServer
from tests.support.vs_wiring import (
    ADMIN,
    JOBS,
    MODS_JOB,
    VERSIONS_JOB,
    find_run,
    install_fixture_mods,
    run_now,
    run_to_end,
    stub_settings,
    wait_for_run,
    write_api_settings,
)
from vintagestory_api.app import create_app
from vintagestory_api.config import Settings

T = TypeVar("T")

LATEST = "/api/v1alpha1/versions/latest"
VERSIONS = "/api/v1alpha1/versions"
MODS = "/api/v1alpha1/mods"
JOB_TIMEOUT = 5  # default_job_timeout_seconds: above every HTTP limit below
# Behavioural bounds on /healthz while a run is in flight, not a benchmark. A job that blocked
# the event loop would hold most calls for the whole run (a second or more); the host may be
# shared with other work, so one slow call alone is tolerated up to the outer bound.
HEALTHZ_TYPICAL = 0.25  # seconds, for the median call
HEALTHZ_BOUND = 2.0  # seconds, for every call


@pytest.fixture
def builtin_jobs_off() -> bool:
    # Each test here writes a settings file with the built-in jobs on.
    return False


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer.running() as server:
        # Key order is not meaningful upstream: serve it reversed so ordering is ours to prove.
        for name in ("stable.json", "unstable.json"):
            versions = json.loads((FIXTURES / name).read_bytes())
            server.bodies[f"/{name}"] = json.dumps(dict(reversed(versions.items()))).encode()
        yield server


@pytest.fixture
def vs_settings(settings: Settings, stub: StubServer, data_dir: Path) -> Settings:
    write_api_settings(data_dir, default_job_timeout_seconds=JOB_TIMEOUT)
    install_fixture_mods(data_dir, game_version="1.22.3")
    return stub_settings(settings, stub, http_read_timeout=1.0, http_retry_backoff=0.05)


@pytest.fixture
def api(vs_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(vs_settings), headers=ADMIN) as client:
        yield client


def _version_order(name: str) -> list[str]:
    """The fixture's versions newest first, release candidates just before their release."""

    def key(version: str) -> tuple[tuple[int, ...], int, int]:
        release, _, candidate = version.partition("-rc.")
        numbers = tuple(int(part) for part in release.split("."))
        return (numbers, 0, int(candidate)) if candidate else (numbers, 1, 0)

    return sorted(json.loads((FIXTURES / name).read_bytes()), key=key, reverse=True)


def _mods(client: httpx.Client) -> dict[str, dict[str, Any]]:
    body = client.get(MODS).json()["data"]
    return {mod["modid"]: mod for mod in body["mods"]}


def test_startup_check_and_mod_refresh_serve_the_fixture_data(api: TestClient) -> None:
    first = wait_for_run(api, VERSIONS_JOB)
    assert (first["trigger"], first["outcome"]) == ("schedule", "succeeded"), first
    assert first["result"]["stable"]["latest"] == "1.22.7"

    latest = api.get(LATEST).json()["data"]
    assert (latest["stable"], latest["unstable"]) == ("1.22.7", "1.22.7-rc.1")
    assert (latest["installed"], latest["update_available"]) == ("1.22.3", True)
    assert latest["checked_at"] is not None
    for channel in ("stable", "unstable"):
        listing = api.get(VERSIONS, params={"channel": channel}).json()["data"]
        versions = [entry["version"] for entry in listing["versions"]]
        assert versions == _version_order(f"{channel}.json")
        assert [entry["is_latest"] for entry in listing["versions"]].count(True) == 1
        assert listing["versions"][0]["is_latest"] is True
        assert listing["versions"][0]["filename"].endswith(".tar.gz")
        assert listing["last_check"]["status"] == "ok"

    jobs = {job["id"]: job for job in api.get(JOBS).json()["data"]["jobs"]}
    for job_id in (VERSIONS_JOB, MODS_JOB):
        assert jobs[job_id]["name"]
        assert jobs[job_id]["description"]
        assert jobs[job_id]["interval_seconds"] == 60
        assert jobs[job_id]["timeout_seconds"] == JOB_TIMEOUT
    # The mod check runs at startup too, so /mods has data at once, not after an interval.
    startup_refresh = wait_for_run(api, MODS_JOB)
    assert (startup_refresh["trigger"], startup_refresh["outcome"]) == ("schedule", "succeeded")

    refresh = run_to_end(api, MODS_JOB)
    assert refresh["outcome"] == "succeeded", refresh
    assert (refresh["result"]["refreshed"], refresh["result"]["updates_available"]) == (2, 1)
    mods = _mods(api)
    # Installed game 1.22.3: Carry On has no 1.22 release, smex 0.9.6 is tagged for it.
    assert mods["carryon"]["version"] == "1.12.1"
    assert mods["carryon"]["moddb"]["latest_version"] == "1.12.1"
    assert mods["carryon"]["moddb"]["update_available"] is False
    assert mods["smex"]["version"] == "0.9.4"
    assert mods["smex"]["moddb"]["latest_version"] == "0.9.6"
    assert mods["smex"]["moddb"]["latest_compatible_version"] == "0.9.6"
    assert mods["smex"]["moddb"]["update_available"] is True


FAULTS: list[Fault | None] = [
    "500",
    None,  # connection refused: the stub is stopped
    "hang",
    "drip",
    "invalid_json",
    "wrong_shape",
    "huge",
    "huge_undeclared",
]
# What each fault's run must name, for the version check and for the mod refresh. A silent
# server trips the read timeout, or on a starved host the request deadline first.
SILENT = "read timeout|no complete answer within"
REASONS: dict[Fault | None, tuple[str, str]] = {
    "500": ("HTTP 500", "HTTP 500"),
    None: ("connection failed", "connection failed"),
    "hang": (SILENT, SILENT),
    "drip": (SILENT, SILENT),
    "invalid_json": ("invalid JSON", "invalid JSON"),
    "wrong_shape": ("no version with a Linux server download", r"statuscode \(missing\)"),
    "huge": ("byte limit", "byte limit"),
    "huge_undeclared": ("byte limit", "byte limit"),
}


def _run_both_keeping_healthz_fast(client: httpx.Client) -> dict[str, str]:
    """Run both jobs now and call /healthz back to back until both runs have finished; every
    request in that window (the run-now posts and the run polls too, so no stall goes unseen)
    must answer within the bounds. Returns job id -> run id."""
    latencies: list[float] = []

    def timed(call: Callable[[], T]) -> T:
        started = time.monotonic()
        value = call()
        latencies.append(time.monotonic() - started)
        return value

    runs = {job_id: timed(partial(run_now, client, job_id)) for job_id in (VERSIONS_JOB, MODS_JOB)}
    deadline = time.monotonic() + JOB_TIMEOUT + 5
    while time.monotonic() < deadline:
        assert timed(partial(client.get, "/healthz")).status_code == 200
        current = [timed(partial(find_run, client, job, run)) for job, run in runs.items()]
        if all(run is not None and run["outcome"] != "running" for run in current):
            assert max(latencies) < HEALTHZ_BOUND, latencies
            assert statistics.median(latencies) < HEALTHZ_TYPICAL, latencies
            return runs
    raise AssertionError(f"runs {runs} still in flight after {JOB_TIMEOUT + 5}s")


@pytest.mark.parametrize("fault", FAULTS, ids=[f or "refused" for f in FAULTS])
def test_fault_fails_the_runs_with_a_reason_keeps_data_and_recovers(
    api: TestClient, stub: StubServer, fault: Fault | None
) -> None:
    # Both checks run at startup.
    assert wait_for_run(api, VERSIONS_JOB)["outcome"] == "succeeded"
    assert wait_for_run(api, MODS_JOB)["outcome"] == "succeeded"
    if fault is None:
        stub.stop()
    else:
        stub.fault = fault

    started = time.monotonic()
    run_ids = _run_both_keeping_healthz_fast(api)
    runs = {job_id: wait_for_run(api, job_id, run_id) for job_id, run_id in run_ids.items()}
    assert time.monotonic() - started < JOB_TIMEOUT + 1
    for (job_id, run), expected in zip(runs.items(), REASONS[fault], strict=True):
        assert run["outcome"] in ("failed", "timed_out"), run
        assert run["duration_ms"] <= JOB_TIMEOUT * 1000, run
        assert re.search(expected, run["error"]["message"]), (job_id, run["error"])

    # The last good data is still served, with the failed check said next to it.
    latest = api.get(LATEST).json()["data"]
    assert (latest["stable"], latest["unstable"]) == ("1.22.7", "1.22.7-rc.1")
    listing = api.get(VERSIONS).json()["data"]
    assert len(listing["versions"]) == 20
    assert listing["last_check"]["status"] == "failed"
    assert listing["last_check"]["reason"]
    mods = _mods(api)
    assert mods["smex"]["moddb"]["latest_version"] == "0.9.6"
    assert mods["smex"]["moddb"]["update_available"] is True
    assert mods["smex"]["moddb"]["error"]

    if fault is None:
        stub.start()
    stub.clear_faults()
    for job_id in (VERSIONS_JOB, MODS_JOB):
        assert run_to_end(api, job_id)["outcome"] == "succeeded"
    assert api.get(VERSIONS).json()["data"]["last_check"]["status"] == "ok"
    assert _mods(api)["smex"]["moddb"]["error"] is None


def test_reply_slower_than_the_job_timeout_ends_the_run_timed_out(
    settings: Settings, stub: StubServer, data_dir: Path
) -> None:
    # A read timeout above the drip interval: only the job's own timeout can end these runs.
    slow = stub_settings(settings, stub, http_read_timeout=3.0, http_request_deadline=10.0)
    write_api_settings(data_dir)
    install_fixture_mods(data_dir, game_version="1.22.3")
    with TestClient(create_app(slow), headers=ADMIN) as api:
        assert wait_for_run(api, VERSIONS_JOB)["outcome"] == "succeeded"
        assert wait_for_run(api, MODS_JOB)["outcome"] == "succeeded"
        patched = api.patch("/api/v1alpha1/config/api", json={"default_job_timeout_seconds": 1})
        assert patched.status_code == 200, patched.text
        stub.fault = "drip"

        run_ids = _run_both_keeping_healthz_fast(api)
        for job_id, run_id in run_ids.items():
            run = wait_for_run(api, job_id, run_id)
            assert run["outcome"] == "timed_out", run
            assert run["reason"] == "exceeded its timeout of 1 s"
            assert run["error"]["message"] == run["reason"]
            assert 1000 <= run["duration_ms"] < 2000, run

        assert api.get(LATEST).json()["data"]["stable"] == "1.22.7"
        assert _mods(api)["smex"]["moddb"]["latest_version"] == "0.9.6"
        stub.clear_faults()
        for job_id in (VERSIONS_JOB, MODS_JOB):
            assert run_to_end(api, job_id)["outcome"] == "succeeded"
