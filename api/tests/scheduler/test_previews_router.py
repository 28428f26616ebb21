"""POST /triggers/preview: what a schedule would do, with nothing scheduled."""

from __future__ import annotations

from datetime import datetime

import pytest
from fastapi.testclient import TestClient

PREVIEW = "/api/v1alpha1/triggers/preview"


def test_cron_preview_normalizes_describes_and_lists_fire_times(
    client: TestClient, monitor_headers: dict[str, str]
) -> None:
    response = client.post(
        PREVIEW,
        headers=monitor_headers,
        json={"cron": "0 4 * * 0", "timezone": "Europe/Berlin", "start": "2024-05-01T00:00:00Z"},
    )

    assert response.status_code == 200
    data = response.json()["data"]
    assert data["trigger_type"] == "cron"
    assert data["normalized"] == "0 4 * * sun"
    assert data["description"] == "At 04:00 AM, only on Sunday (Europe/Berlin)"
    assert data["next_run_times"] == [
        "2024-05-05T04:00:00+02:00",
        "2024-05-12T04:00:00+02:00",
        "2024-05-19T04:00:00+02:00",
        "2024-05-26T04:00:00+02:00",
        "2024-06-02T04:00:00+02:00",
    ]
    assert data["warnings"] == []
    assert client.get("/healthz").json()["data"]["scheduler"]["job_count"] == 0


def test_interval_preview_counts_from_start_and_warns_when_too_frequent(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    response = client.post(
        PREVIEW,
        headers=admin_headers,
        json={"interval_seconds": 30, "count": 3, "start": "2024-01-01T00:00:00+00:00"},
    )

    data = response.json()["data"]
    assert data["trigger_type"] == "interval"
    assert data["description"] == "every 30 seconds"
    assert [datetime.fromisoformat(t).second for t in data["next_run_times"]] == [30, 0, 30]
    assert [w["code"] for w in data["warnings"]] == ["TOO_FREQUENT"]


def test_preview_warns_about_a_local_time_skipped_by_dst(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    response = client.post(
        PREVIEW,
        headers=admin_headers,
        json={"cron": "30 2 * * *", "timezone": "Europe/Berlin", "start": "2024-03-30T12:00:00"},
    )

    data = response.json()["data"]
    # A start without an offset is read in the schedule's timezone.
    # As cron: the run of a skipped wall time happens right after the change, at 03:00.
    assert data["next_run_times"][:2] == ["2024-03-31T03:00:00+02:00", "2024-04-01T02:30:00+02:00"]
    assert [w["code"] for w in data["warnings"]] == ["DST_SKIPPED"]


def test_preview_without_start_lists_future_times(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    data = client.post(PREVIEW, headers=admin_headers, json={"cron": "@hourly"}).json()["data"]
    times = [datetime.fromisoformat(t) for t in data["next_run_times"]]
    assert len(times) == 5
    assert times == sorted(times)
    assert data["timezone"] == "UTC"


@pytest.mark.parametrize(
    ("body", "code", "names"),
    [
        ({"cron": "61 * * * *"}, "INVALID_SCHEDULE", "minute"),
        ({"interval_seconds": -5}, "INVALID_SCHEDULE", "interval_seconds"),
        ({"cron": "* * * * *", "timezone": "Not/AZone"}, "INVALID_SCHEDULE", "timezone"),
        ({"cron": "* * * * *", "count": 51}, "VALIDATION_ERROR", "count"),
        ({"cron": "* * * * *", "count": 0}, "VALIDATION_ERROR", "count"),
        ({"cron": "* * * * *", "func": "os:system"}, "VALIDATION_ERROR", "func"),
        ({"interval_seconds": 60, "cron": "* * * * *"}, "VALIDATION_ERROR", "exactly one"),
    ],
)
def test_bad_preview_requests_are_422_naming_the_field(
    client: TestClient,
    admin_headers: dict[str, str],
    body: dict[str, object],
    code: str,
    names: str,
) -> None:
    response = client.post(PREVIEW, headers=admin_headers, json=body)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == code
    assert names in response.json()["error"]["message"]


def test_preview_needs_a_key(client: TestClient) -> None:
    assert client.post(PREVIEW, json={"interval_seconds": 60}).status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"cron": "* * * * *", "start": "9999-12-31T23:59:00Z"},
        {"interval_seconds": 2678400, "start": "9999-06-01T00:00:00Z", "count": 50},
        {"cron": "0 0 * * *", "start": "1960-01-01T00:00:00Z"},
        {"cron": "0 0 * * *", "start": "1969-12-31T23:00:00", "timezone": "Asia/Tokyo"},
    ],
)
def test_start_outside_1970_to_9000_is_a_422_naming_start(
    client: TestClient, monitor_headers: dict[str, str], body: dict[str, object]
) -> None:
    response = client.post(PREVIEW, headers=monitor_headers, json=body)

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["message"].startswith("start: ")
    assert "1970" in error["message"]


def test_count_given_as_a_string_is_refused(
    client: TestClient, monitor_headers: dict[str, str]
) -> None:
    response = client.post(
        PREVIEW, headers=monitor_headers, json={"cron": "0 4 * * *", "count": "5"}
    )

    assert response.status_code == 422
    assert response.json()["error"]["message"].startswith("count: ")


def test_a_200_year_preview_lists_50_leap_days_and_only_real_dst_warnings(
    client: TestClient, monitor_headers: dict[str, str]
) -> None:
    # 50 leap days span 200 years; only the days a zone changes its offset are examined, so the
    # answer holds exactly the DST warnings that exist (none for a midnight job in Berlin).
    body = {"cron": "0 0 29 2 *", "count": 50, "timezone": "Europe/Berlin"}
    data = client.post(PREVIEW, headers=monitor_headers, json=body).json()["data"]

    times = [datetime.fromisoformat(t) for t in data["next_run_times"]]
    assert len(times) == 50
    assert all((t.month, t.day, t.hour) == (2, 29, 0) for t in times)
    assert times == sorted(times)
    assert times[-1].year - times[0].year > 190
    assert data["warnings"] == []


@pytest.mark.parametrize("start", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"])
def test_a_start_at_the_edge_of_what_a_datetime_holds_is_a_422(
    client: TestClient, monitor_headers: dict[str, str], start: str
) -> None:
    body = {"cron": "0 4 * * *", "timezone": "Pacific/Kiritimati", "start": start}
    response = client.post(PREVIEW, headers=monitor_headers, json=body)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "INVALID_SCHEDULE"
