"""Helpers of the schedule tests: bodies built by keyword, and requests that check status."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

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


def call(client: TestClient, method: str, path: str, expect: int, **kwargs: Any) -> Any:
    response = client.request(method, path, headers=ADMIN, **kwargs)
    assert response.status_code == expect, response.text
    return response.json()
