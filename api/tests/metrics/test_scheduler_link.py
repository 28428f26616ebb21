"""The metrics pieces against the real scheduler: the job on a 1 s interval, and run counting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from vintagestory_api.metrics.jobs import metrics_collection
from vintagestory_api.metrics.service import build_metrics
from vintagestory_api.scheduler.service import SchedulerService


@pytest.fixture
async def scheduler() -> AsyncIterator[SchedulerService]:
    scheduler = SchedulerService(default_timezone=UTC, shutdown_grace_seconds=1)
    await scheduler.start()
    try:
        yield scheduler
    finally:
        await scheduler.shutdown()


async def until(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def failing_job() -> None:
    raise RuntimeError("boom")


async def test_one_second_interval_adds_about_one_sample_a_second(
    scheduler: SchedulerService, data_dir: Path
) -> None:
    metrics, _ = build_metrics(data_dir, scheduler, interval_seconds=1, retention_minutes=1)
    started = time.monotonic()
    scheduler.add_interval_job(
        metrics_collection, 1, "metrics_collection", args=(metrics,), run_immediately=True
    )
    await until(lambda: len(metrics.history(1)) >= 3)
    elapsed = time.monotonic() - started
    # Three samples need two full intervals after the immediate first one, and not many more.
    assert 1.5 <= elapsed < 6
    assert len(metrics.history(1)) <= elapsed + 2


async def test_failing_job_counter_rises_and_every_job_is_exposed(
    scheduler: SchedulerService, data_dir: Path
) -> None:
    metrics, prometheus = build_metrics(
        data_dir, scheduler, interval_seconds=10, retention_minutes=1
    )
    scheduler.add_interval_job(metrics_collection, 10, "metrics_collection", args=(metrics,))
    scheduler.add_interval_job(failing_job, 1, "failing_job", run_immediately=True)

    def failed() -> float:
        text = prometheus.render().decode()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "vsapi_job_runs_total" and sample.labels == {
                    "job_id": "failing_job",
                    "outcome": "failed",
                }:
                    return sample.value
        raise AssertionError("no failed counter for failing_job")

    await until(lambda: failed() >= 2)
    names_by_job: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(prometheus.render().decode()):
        for sample in family.samples:
            if "job_id" in sample.labels:
                names_by_job.setdefault(sample.labels["job_id"], set()).add(sample.name)
    for job in ("metrics_collection", "failing_job"):
        assert {
            "vsapi_job_runs_total",
            "vsapi_job_run_duration_seconds_bucket",
            "vsapi_job_lateness_seconds_bucket",
            "vsapi_job_running",
            "vsapi_job_paused",
            "vsapi_job_next_run_timestamp_seconds",
            "vsapi_job_last_success_timestamp_seconds",
        } <= names_by_job[job]
