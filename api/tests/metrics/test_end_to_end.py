"""Metrics through the real lifespan: the sampling job, the history API and /metrics."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.samples import Sample

from tests.support.fakes import fail
from tests.support.keys import ADMIN_KEY, MONITOR_KEY
from tests.support.prometheus_text import parse, value
from vintagestory_api.api_settings.service import API_SETTINGS_FILE
from vintagestory_api.config import Settings
from vintagestory_api.kit.state_files import write_json
from vintagestory_api.scheduler.service import SchedulerService

CONFIG = "/api/v1alpha1/config/api"
JOBS = "/api/v1alpha1/jobs"
CURRENT = "/api/v1alpha1/metrics/current"
HISTORY = "/api/v1alpha1/metrics/history"
ADMIN = {"X-API-Key": ADMIN_KEY}

# Every job shows each of these (histograms through their _count series).
JOB_SERIES = {
    "vsapi_job_runs_total",
    "vsapi_job_run_duration_seconds_count",
    "vsapi_job_lateness_seconds_count",
    "vsapi_job_running",
    "vsapi_job_paused",
    "vsapi_job_next_run_timestamp_seconds",
    "vsapi_job_last_success_timestamp_seconds",
}


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    # The built-in jobs start off (conftest); each test turns on what it is about via PATCH.
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test", headers=ADMIN
        ) as client,
    ):
        yield client


async def until(condition: Callable[[], Any], timeout: float = 10, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def patch(http: httpx.AsyncClient, **changes: int) -> None:
    response = await http.patch(CONFIG, json=changes)
    assert response.status_code == 200, response.text


async def history(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.get(HISTORY, params={"minutes": 1})
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def current(http: httpx.AsyncClient) -> dict[str, Any] | None:
    response = await http.get(CURRENT)
    assert response.status_code == 200, response.text
    data: dict[str, Any] | None = response.json()["data"]
    return data


async def run_now(http: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    """POST /jobs/{id}/run and wait, through the API, until that run has finished."""
    started: list[httpx.Response] = []

    async def accepted() -> bool:
        # 409 while a run is in flight (the one enabling a job starts, or a scheduled one).
        response = await http.post(f"{JOBS}/{job_id}/run")
        assert response.status_code in (202, 409), response.text
        started.append(response)
        return response.status_code == 202

    await until(accepted, what=f"{job_id} to accept a run")
    run_id = started[-1].json()["data"]["run_id"]
    finished: dict[str, Any] = {}

    async def done() -> bool:
        runs = (await http.get(f"{JOBS}/{job_id}/runs")).json()["data"]["runs"]
        for run in runs:
            if run["run_id"] == run_id and run["outcome"] != "running":
                finished.update(run)
                return True
        return False

    await until(done, what=f"run {run_id} of {job_id} to finish")
    return finished


async def scrape(http: httpx.AsyncClient) -> list[Sample]:
    response = await http.get("/metrics")
    assert response.status_code == 200, response.text
    return parse(response.text)


async def test_history_grows_one_sample_a_second_and_never_beyond_the_ring(
    http: httpx.AsyncClient,
) -> None:
    assert (await history(http))["samples"] == []
    # Retention 1 min at 1 s: a ring of 60. Enabling the job takes a sample at once.
    await patch(http, metrics_retention_minutes=1, metrics_collection_interval=1)
    started = time.monotonic()

    async def four_samples() -> bool:
        count = len((await history(http))["samples"])
        # Never ahead of the clock: one at once, then one a second.
        assert count <= time.monotonic() - started + 1.5, count
        return count >= 4

    await until(four_samples, timeout=8, what="four samples at a 1 s interval")
    assert time.monotonic() - started >= 2.5
    data = await history(http)
    assert (data["interval_seconds"], data["retention_minutes"]) == (1, 1)
    stamps = [datetime.fromisoformat(sample["timestamp"]) for sample in data["samples"]]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(stamps)]
    assert stamps == sorted(stamps), "oldest first"
    # Loose per gap (a loaded CI box delays single fires), tight on average.
    assert all(0.5 <= gap <= 2.0 for gap in gaps), gaps
    assert 0.8 <= sum(gaps) / len(gaps) <= 1.3, gaps
    runs = (await http.get(f"{JOBS}/metrics_collection/runs")).json()["data"]["runs"]
    assert runs[0]["result"]["capacity"] == 60

    # Filling a 60-sample ring at 1 s takes a minute; a 30 s interval keeps the same retention
    # in a ring of 2, which run-now overfills at once. Resizing keeps the newest samples.
    await patch(http, metrics_collection_interval=30)
    kept = [datetime.fromisoformat(s["timestamp"]) for s in (await history(http))["samples"]]
    assert len(kept) == 2
    assert kept[0] < kept[1]
    assert kept[1] >= stamps[-1], "resizing dropped the newest samples"
    newest = None
    for _ in range(4):
        run = await run_now(http, "metrics_collection")
        assert run["outcome"] == "succeeded"
        assert run["result"]["capacity"] == 2
        samples = (await history(http))["samples"]
        assert len(samples) == 2
        assert samples[-1]["timestamp"] != newest
        newest = samples[-1]["timestamp"]
    latest = await current(http)
    assert latest is not None
    assert latest["timestamp"] == newest


async def test_metrics_exposes_every_job_and_counts_failures(
    app: FastAPI, http: httpx.AsyncClient
) -> None:
    await patch(
        http,
        metrics_collection_interval=3600,
        mod_list_refresh_interval=3600,
        server_versions_refresh_interval=3600,
    )
    scheduler: SchedulerService = app.state.scheduler
    # There is no API to add arbitrary jobs; a failing one goes straight to the scheduler.
    scheduler.add_interval_job(fail, 3600, "always_fails", description="fails on purpose")
    job_ids = {job["id"] for job in (await http.get(JOBS)).json()["data"]["jobs"]}
    assert job_ids == {
        "metrics_collection",
        "mod_cache_refresh",
        "server_versions_check",
        "always_fails",
    }

    samples = await scrape(http)
    assert value(samples, "vsapi_scheduler_up") == 1
    assert value(samples, "vsapi_scheduler_jobs") == len(job_ids)
    assert any(s.name.startswith("process_") for s in samples)
    names_by_job: dict[str, set[str]] = {}
    for sample in samples:
        if "job_id" in sample.labels:
            names_by_job.setdefault(sample.labels["job_id"], set()).add(sample.name)
    for job_id in job_ids:
        assert names_by_job.get(job_id, set()) >= JOB_SERIES, job_id
    failed_before = value(samples, "vsapi_job_runs_total", job_id="always_fails", outcome="failed")
    assert failed_before == 0

    for expected in (1, 2):
        assert (await run_now(http, "always_fails"))["outcome"] == "failed"
        samples = await scrape(http)
        assert (
            value(samples, "vsapi_job_runs_total", job_id="always_fails", outcome="failed")
            == expected
        )
        assert value(samples, "vsapi_job_consecutive_failures", job_id="always_fails") == expected
    # The run-now requests themselves are counted under their route template, not the raw path.
    assert (
        value(
            samples,
            "vsapi_http_requests_total",
            route="/api/v1alpha1/jobs/{job_id}/run",
            method="POST",
            status="2xx",
        )
        == 2
    )


async def test_monitor_key_is_403_on_current_and_no_key_is_200_on_prometheus(
    app: FastAPI, http: httpx.AsyncClient
) -> None:
    monitor = await http.get(CURRENT, headers={"X-API-Key": MONITOR_KEY})
    assert monitor.status_code == 403
    assert monitor.json()["error"]["code"] == "FORBIDDEN"
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as bare:
        assert (await bare.get(CURRENT)).status_code == 401
        assert (await bare.get("/metrics")).status_code == 200


@pytest.fixture
def metrics_job_on(settings: Settings) -> None:
    # Only metrics sampling, on its default interval, before the app starts.
    write_json(
        settings.state_dir / API_SETTINGS_FILE,
        {
            "metrics_collection_interval": 10,
            "mod_list_refresh_interval": 0,
            "server_versions_refresh_interval": 0,
        },
        keep_backup=False,
    )


async def test_first_sample_is_taken_at_startup_not_after_one_interval(
    metrics_job_on: None, http: httpx.AsyncClient
) -> None:
    started = time.monotonic()

    async def sampled() -> bool:
        return await current(http) is not None

    await until(sampled, timeout=5, what="the startup sample")
    assert time.monotonic() - started < 5, "waited for a whole 10 s interval"
