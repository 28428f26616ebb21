"""Helpers of the schedule tests: bodies built by keyword, and requests that check status."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

from tests.support.game_fixtures import (  # noqa: F401  # fixtures, used by name
    fifo,
    game,
    game_app,
    game_port,
    game_settings,
    knobs,
    timings,
)
from tests.support.keys import ADMIN_KEY

SCHEDULES = "/api/v1alpha1/schedules"
HOLDS = "/api/v1alpha1/holds"
ADMIN = {"X-API-Key": ADMIN_KEY}


def make_schedule(
    *,
    schedule_id: str = "nightly",
    trigger: dict[str, Any] | None = None,
    steps: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    return {
        "id": schedule_id,
        "name": fields.pop("name", f"Schedule {schedule_id}"),
        "trigger": trigger or {"cron": "0 4 * * *", "timezone": "UTC"},
        "steps": steps or [{"action": "restart", "warn_before": [60, 10]}],
        **fields,
    }


def wait_run(
    client: TestClient, schedule_id: str, *, timeout: float = 20.0, done: str = "finished"
) -> dict[str, Any]:
    """Poll the job's newest run until it is no longer running (or, with done="running",
    until one runs); fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        runs = call(client, "GET", f"/api/v1alpha1/jobs/schedule.{schedule_id}/runs", 200)
        newest = runs["data"]["runs"][0] if runs["data"]["runs"] else None
        if newest is not None and (newest["outcome"] != "running") == (done == "finished"):
            return dict(newest)
        if time.monotonic() >= deadline:
            raise AssertionError(f"no {done} run of {schedule_id}; newest: {newest}")
        time.sleep(0.05)


def wait_view(
    client: TestClient, schedule_id: str, predicate: Any, *, timeout: float = 20.0
) -> dict[str, Any]:
    """Poll GET /schedules/{id} until `predicate(schedule)` holds."""
    deadline = time.monotonic() + timeout
    while True:
        view: dict[str, Any] = call(client, "GET", f"{SCHEDULES}/{schedule_id}", 200)["data"]
        if predicate(view):
            return view
        if time.monotonic() >= deadline:
            raise AssertionError(f"schedule {schedule_id} never got there: {view['status']}")
        time.sleep(0.05)


def call(client: TestClient, method: str, path: str, expect: int, **kwargs: Any) -> Any:
    response = client.request(method, path, headers=ADMIN, **kwargs)
    assert response.status_code == expect, response.text
    return response.json()
