from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.metrics_fakes import (
    FakeScheduler,
    install_metrics,
    job_info,
    wire_metrics_routes,
)
from vintagestory_api.app import create_app
from vintagestory_api.config import Settings
from vintagestory_api.metrics.service import MetricsService

CURRENT = "/api/v1alpha1/metrics/current"
HISTORY = "/api/v1alpha1/metrics/history"


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    app = create_app(settings)
    wire_metrics_routes(app)
    return app


@pytest.fixture
def metrics(app: FastAPI, client: TestClient, data_dir: Path) -> MetricsService:
    metrics, _ = install_metrics(app, data_dir, FakeScheduler(job_info("metrics_collection")))
    return metrics


def test_current_is_null_before_the_first_sample(
    client: TestClient, metrics: MetricsService, admin_headers: dict[str, str]
) -> None:
    response = client.get(CURRENT, headers=admin_headers)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "data": None}


def test_current_is_the_newest_sample(
    client: TestClient, metrics: MetricsService, admin_headers: dict[str, str]
) -> None:
    newest = metrics.collect()
    metrics.add(metrics.collect())
    metrics.add(newest)
    data = client.get(CURRENT, headers=admin_headers).json()["data"]
    assert data["timestamp"] == newest.model_dump(mode="json")["timestamp"]
    assert set(data) == {"timestamp", "api", "game_server", "players_online", "host", "disk"}
    assert data["game_server"] is None
    assert data["players_online"] is None
    assert data["api"]["rss_mib"] > 0


def test_history_grows_by_one_sample_a_second_up_to_the_ring_size(
    client: TestClient, metrics: MetricsService, admin_headers: dict[str, str]
) -> None:
    # Drives the job the way a 1 s interval schedule does, then overfills the 60-sample ring.
    def count() -> int:
        body = client.get(HISTORY, params={"minutes": 1}, headers=admin_headers).json()
        assert body["data"]["interval_seconds"] == 1
        return len(body["data"]["samples"])

    assert count() == 0
    portal = client.portal
    assert portal is not None
    started = time.monotonic()
    for expected in (1, 2, 3):
        portal.call(metrics.sample)
        assert count() == expected
        deadline = started + expected
        while time.monotonic() < deadline:
            time.sleep(0.05)
    for _ in range(80):
        metrics.add(metrics.collect())
    assert count() == 60 == metrics.capacity


def test_history_lists_samples_oldest_first_with_the_interval(
    client: TestClient, metrics: MetricsService, admin_headers: dict[str, str]
) -> None:
    for _ in range(3):
        metrics.add(metrics.collect())
    data = client.get(HISTORY, params={"minutes": 1}, headers=admin_headers).json()["data"]
    assert data["interval_seconds"] == 1
    assert data["retention_minutes"] == 1
    assert data["minutes"] == 1
    stamps = [s["timestamp"] for s in data["samples"]]
    assert len(stamps) == 3
    assert stamps == sorted(stamps)


@pytest.mark.parametrize(
    ("minutes", "code"),
    [
        ("0", "VALIDATION_ERROR"),
        ("-1", "VALIDATION_ERROR"),
        ("x", "VALIDATION_ERROR"),
        ("10081", "VALIDATION_ERROR"),
        ("2", "METRICS_WINDOW_TOO_LONG"),
    ],
)
def test_history_outside_one_to_retention_is_422_naming_minutes(
    client: TestClient,
    metrics: MetricsService,
    admin_headers: dict[str, str],
    minutes: str,
    code: str,
) -> None:
    response = client.get(HISTORY, params={"minutes": minutes}, headers=admin_headers)
    assert response.status_code == 422
    body = response.json()
    assert body["status"] == "error"
    assert body["error"]["code"] == code
    assert "minutes" in body["error"]["message"]


@pytest.mark.parametrize("path", [CURRENT, HISTORY])
def test_monitor_key_gets_403_on_metrics(
    client: TestClient, metrics: MetricsService, monitor_headers: dict[str, str], path: str
) -> None:
    response = client.get(path, headers=monitor_headers)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "FORBIDDEN"


def test_no_key_gets_401_on_metrics_current(client: TestClient, metrics: MetricsService) -> None:
    assert client.get(CURRENT).status_code == 401


def test_metrics_routes_are_documented_in_openapi(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "minutes" in str(paths[HISTORY]["get"]["parameters"])
    assert "text/plain" in paths["/metrics"]["get"]["responses"]["200"]["content"]
