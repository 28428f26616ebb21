from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.samples import Sample

from tests.support.metrics_fakes import (
    FakeScheduler,
    finished_run,
    install_metrics,
    job_info,
    wire_metrics_routes,
)
from tests.support.prometheus_text import parse, value
from vintagestory_api.app import create_app
from vintagestory_api.config import Settings
from vintagestory_api.metrics.prometheus import PrometheusMetrics

JOB_SERIES = (
    "vsapi_job_runs_total",
    "vsapi_job_run_duration_seconds_count",
    "vsapi_job_lateness_seconds_count",
    "vsapi_job_running",
    "vsapi_job_paused",
    "vsapi_job_next_run_timestamp_seconds",
    "vsapi_job_last_success_timestamp_seconds",
    "vsapi_job_consecutive_failures",
    "vsapi_job_interval_seconds",
)


@pytest.fixture
def scheduler() -> FakeScheduler:
    return FakeScheduler(
        job_info("metrics_collection", interval=10), job_info("flaky", paused=True)
    )


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    app = create_app(settings)
    wire_metrics_routes(app)
    return app


@pytest.fixture
def prometheus(
    app: FastAPI, client: TestClient, data_dir: Path, scheduler: FakeScheduler
) -> PrometheusMetrics:
    return install_metrics(app, data_dir, scheduler)[1]


def scrape(client: TestClient) -> list[Sample]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


def test_metrics_needs_no_key_and_parses(client: TestClient, prometheus: PrometheusMetrics) -> None:
    samples = scrape(client)
    assert value(samples, "vsapi_scheduler_up") == 1
    assert value(samples, "vsapi_scheduler_jobs") == 2
    assert any(s.name.startswith("process_") for s in samples)


def test_every_registered_job_has_every_job_series(
    client: TestClient, prometheus: PrometheusMetrics, scheduler: FakeScheduler
) -> None:
    samples = scrape(client)
    for job in ("metrics_collection", "flaky"):
        names = {s.name for s in samples if s.labels.get("job_id") == job}
        assert set(JOB_SERIES) <= names, (job, set(JOB_SERIES) - names)
        for outcome in ("succeeded", "failed", "timed_out", "skipped", "missed", "cancelled"):
            assert value(samples, "vsapi_job_runs_total", job_id=job, outcome=outcome) == 0
    assert value(samples, "vsapi_job_paused", job_id="flaky") == 1
    assert value(samples, "vsapi_job_paused", job_id="metrics_collection") == 0
    assert value(samples, "vsapi_job_interval_seconds", job_id="metrics_collection") == 10
    next_run = scheduler.jobs[0].next_run_time
    assert next_run is not None
    assert value(
        samples, "vsapi_job_next_run_timestamp_seconds", job_id="metrics_collection"
    ) == pytest.approx(next_run.timestamp())


def test_a_failing_job_counts_failures_and_its_streak(
    client: TestClient, prometheus: PrometheusMetrics, scheduler: FakeScheduler
) -> None:
    scheduler.finish(finished_run("flaky", "succeeded"))
    for _ in range(3):
        scheduler.finish(finished_run("flaky", "failed", duration_ms=2500))
    samples = scrape(client)
    assert value(samples, "vsapi_job_runs_total", job_id="flaky", outcome="failed") == 3
    assert value(samples, "vsapi_job_runs_total", job_id="flaky", outcome="succeeded") == 1
    assert value(samples, "vsapi_job_consecutive_failures", job_id="flaky") == 3
    assert value(samples, "vsapi_job_run_duration_seconds_count", job_id="flaky") == 4
    assert value(samples, "vsapi_job_run_duration_seconds_sum", job_id="flaky") == pytest.approx(
        7.62
    )

    scheduler.finish(finished_run("flaky", "succeeded"))
    samples = scrape(client)
    assert value(samples, "vsapi_job_consecutive_failures", job_id="flaky") == 0
    assert value(samples, "vsapi_job_runs_total", job_id="flaky", outcome="failed") == 3


def test_last_success_is_nan_until_a_success_then_its_finish_time(
    client: TestClient, prometheus: PrometheusMetrics, scheduler: FakeScheduler
) -> None:
    last_success = "vsapi_job_last_success_timestamp_seconds"
    assert value(scrape(client), last_success, job_id="flaky") != value(
        scrape(client), last_success, job_id="flaky"
    )  # NaN is the only value unequal to itself
    run = finished_run("flaky", "succeeded")
    scheduler.finish(run)
    scheduler.finish(finished_run("flaky", "failed"))
    assert run.finished_at is not None
    assert value(scrape(client), last_success, job_id="flaky") == pytest.approx(
        run.finished_at.timestamp()
    )


def test_scheduler_down_shows_zero(
    client: TestClient, prometheus: PrometheusMetrics, scheduler: FakeScheduler
) -> None:
    scheduler.running = False
    assert value(scrape(client), "vsapi_scheduler_up") == 0


def test_http_requests_are_labelled_by_route_template_and_status_class(
    client: TestClient,
    prometheus: PrometheusMetrics,
    admin_headers: dict[str, str],
    monitor_headers: dict[str, str],
) -> None:
    client.get("/healthz")
    client.get("/api/v1alpha1/metrics/current", headers=admin_headers)
    client.get("/api/v1alpha1/metrics/current", headers=monitor_headers)
    client.get("/api/v1alpha1/metrics/history", params={"minutes": 0}, headers=admin_headers)
    client.get("/no/such/path/12345")
    samples = scrape(client)
    requests = "vsapi_http_requests_total"
    current = "/api/v1alpha1/metrics/current"
    assert value(samples, requests, route="/healthz", method="GET", status="2xx") == 1
    # The full template, prefixes of included routers included.
    assert value(samples, requests, route=current, method="GET", status="2xx") == 1
    assert value(samples, requests, route=current, method="GET", status="4xx") == 1
    history = "/api/v1alpha1/metrics/history"
    assert value(samples, requests, route=history, method="GET", status="4xx") == 1
    assert value(samples, requests, route="unmatched", method="GET", status="4xx") == 1
    assert not any("12345" in str(s.labels) for s in samples)
    assert value(samples, "vsapi_http_request_duration_seconds_count", route="/healthz") == 1


def test_path_parameters_collapse_into_the_template(settings: Settings, data_dir: Path) -> None:
    app = create_app(settings)
    wire_metrics_routes(app)

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    with TestClient(app) as client:
        install_metrics(app, data_dir, FakeScheduler())
        for item_id in (1, 2, 3):
            client.get(f"/items/{item_id}")
        client.request("BREW", "/items/1")
        samples = scrape(client)
    assert value(samples, "vsapi_http_requests_total", route="/items/{item_id}", method="GET") == 3
    assert (
        value(samples, "vsapi_http_requests_total", route="/items/{item_id}", method="other") == 1
    )


def test_each_app_has_its_own_registry(settings: Settings, data_dir: Path) -> None:
    first, second = PrometheusMetrics(), PrometheusMetrics()
    first.observe_request("/healthz", "GET", 200, 0.01)
    assert b'route="/healthz"' in first.render()
    assert b'route="/healthz"' not in second.render()
