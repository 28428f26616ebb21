"""Stand-ins for the metrics tests: a scheduler with jobs and runs, and synthetic samples."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.routing import iter_route_contexts

from vintagestory_api.app import API_PREFIX
from vintagestory_api.auth.deps import get_role
from vintagestory_api.metrics import router as metrics_router
from vintagestory_api.metrics.prometheus import PrometheusMetrics
from vintagestory_api.metrics.schemas import DiskSample, HostSample, MetricsSample, ProcessSample
from vintagestory_api.metrics.service import MetricsService, build_metrics
from vintagestory_api.scheduler.schemas import JobInfo, JobRun, RunCounts, RunOutcome

_run_ids = count(1)


def job_info(job_id: str, *, interval: int = 60, paused: bool = False) -> JobInfo:
    return JobInfo(
        id=job_id,
        name=job_id,
        trigger_type="interval",
        trigger_details=f"every {interval} seconds",
        interval_seconds=interval,
        timezone="UTC",
        next_run_time=None if paused else datetime.now(UTC) + timedelta(seconds=interval),
        paused=paused,
        running=False,
        timeout_seconds=None,
        counts=RunCounts(),
    )


def finished_run(
    job_id: str, outcome: RunOutcome, *, duration_ms: int = 120, lateness_ms: int | None = 5
) -> JobRun:
    now = datetime.now(UTC)
    return JobRun(
        run_id=str(next(_run_ids)),
        job_id=job_id,
        trigger="schedule",
        outcome=outcome,
        scheduled_for=now - timedelta(milliseconds=duration_ms),
        started_at=now - timedelta(milliseconds=duration_ms),
        finished_at=now,
        duration_ms=duration_ms,
        lateness_ms=lateness_ms,
    )


def fake_sample(n: int, *, at: datetime | None = None) -> MetricsSample:
    """A full sample (game server and disk present) whose numbers vary with `n`; no psutil."""

    def process(pid: int) -> ProcessSample:
        return ProcessSample(
            pid=pid, rss_mib=100 + n / 7, cpu_percent=n % 400 / 3, open_files=n % 900, threads=40
        )

    return MetricsSample(
        timestamp=at or datetime.now(UTC),
        api=process(4242),
        game_server=process(4343),
        players_online=n % 64,
        host=HostSample(
            memory_used_mib=8000 + n / 3,
            memory_total_mib=32000.0,
            memory_percent=25 + n / 1000,
            load_average=(n / 100, n / 200, n / 300),
            cpu_count=8,
        ),
        disk=DiskSample(
            path=f"/srv/vintagestory/data-{n % 3}",
            used_bytes=10**11 + n,
            free_bytes=4 * 10**11 - n,
            total_bytes=5 * 10**11,
        ),
    )


class FakeScheduler:
    def __init__(self, *jobs: JobInfo) -> None:
        self.jobs = list(jobs)
        self.running = True
        self._listeners: list[Callable[[JobRun], None]] = []

    def list_jobs(self) -> list[JobInfo]:
        return list(self.jobs)

    def add_run_listener(self, listener: Callable[[JobRun], None]) -> None:
        self._listeners.append(listener)

    def finish(self, run: JobRun) -> None:
        for listener in self._listeners:
            listener(run)


def wire_metrics_routes(app: FastAPI) -> None:
    """Add the metrics routes unless the app factory already does."""
    paths = {context.path_format for context in iter_route_contexts(app.routes)}
    if "/metrics" not in paths:
        app.include_router(metrics_router.prometheus_router)
    if f"{API_PREFIX}/metrics/current" not in paths:
        app.include_router(
            metrics_router.router, prefix=API_PREFIX, dependencies=[Depends(get_role)]
        )


def install_metrics(
    app: FastAPI, data_dir: Path, scheduler: FakeScheduler, *, interval: int = 1, retention: int = 1
) -> tuple[MetricsService, PrometheusMetrics]:
    """Replace whatever the lifespan built with services watching `scheduler`."""
    metrics, prometheus = build_metrics(
        data_dir, scheduler, interval_seconds=interval, retention_minutes=retention
    )
    app.state.metrics = metrics
    app.state.prometheus = prometheus
    app.state.http_metrics = prometheus
    return metrics, prometheus
