"""Schedules over HTTP without a game server: CRUD, validation, occurrences, holds, the
timeline, export and import, and what survives a restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient

from tests.schedules.conftest import HOLDS, SCHEDULES, call, make_schedule
from tests.support.keys import MONITOR_KEY
from tests.support.offline import BUILTIN_JOBS_OFF
from vintagestory_api.api_settings.service import API_SETTINGS_FILE
from vintagestory_api.app import create_app
from vintagestory_api.config import Settings
from vintagestory_api.kit.state_files import write_json


def test_create_answers_the_schedule_its_next_actions_and_a_job(client: TestClient) -> None:
    body = call(client, "POST", SCHEDULES, 201, json=make_schedule())["data"]
    status = body["status"]
    assert status["job_id"] == "schedule.nightly"
    assert status["lead_seconds"] == 60
    assert len(status["next_action_times"]) == 5
    action = datetime.fromisoformat(status["next_action_at"])
    assert (action.hour, action.minute) == (4, 0)
    assert datetime.fromisoformat(status["next_run_at"]) == action - timedelta(seconds=60)
    job = call(client, "GET", "/api/v1alpha1/jobs/schedule.nightly", 200)["data"]
    assert job["managed_by"] == "/schedules/nightly"
    assert datetime.fromisoformat(job["next_run_time"]) == action - timedelta(seconds=60)
    # Defined here, so the jobs API refuses to reschedule or delete it.
    refused = call(client, "DELETE", "/api/v1alpha1/jobs/schedule.nightly", 409)
    assert refused["error"]["code"] == "JOB_MANAGED_ELSEWHERE"
    monitor = client.get(f"{SCHEDULES}/nightly", headers={"X-API-Key": MONITOR_KEY})
    assert monitor.status_code == 200
    denied = client.delete(f"{SCHEDULES}/nightly", headers={"X-API-Key": MONITOR_KEY})
    assert denied.status_code == 403


def test_validation_names_the_field(client: TestClient) -> None:
    bad_cron = make_schedule(trigger={"cron": "0 4 * *", "timezone": "UTC"})
    error = call(client, "POST", SCHEDULES, 422, json=bad_cron)["error"]
    assert error["message"].startswith("body.trigger.cron:")
    bad_zone = make_schedule(trigger={"cron": "0 4 * * *", "timezone": "Mars/Olympus"})
    assert (
        "body.trigger.timezone"
        in call(client, "POST", SCHEDULES, 422, json=bad_zone)["error"]["message"]
    )
    no_trigger = make_schedule(trigger={"every": 5})
    assert "trigger" in call(client, "POST", SCHEDULES, 422, json=no_trigger)["error"]["message"]
    bad_step = make_schedule(steps=[{"action": "announce"}])
    message = call(client, "POST", SCHEDULES, 422, json=bad_step)["error"]["message"]
    assert "steps.0.announce.message" in message
    two_countdowns = make_schedule(
        steps=[{"action": "stop", "warn_before": [5]}, {"action": "restart", "warn_before": [5]}]
    )
    message = call(client, "POST", SCHEDULES, 422, json=two_countdowns)["error"]["message"]
    assert "steps.1.warn_before" in message
    braces = make_schedule(steps=[{"action": "restart", "message": "in {time}"}])
    assert (
        "steps.0.restart.message"
        in call(client, "POST", SCHEDULES, 422, json=braces)["error"]["message"]
    )
    past = make_schedule(trigger={"at": "2001-01-01T00:00:00Z"})
    assert call(client, "POST", SCHEDULES, 422, json=past)["error"]["message"] == (
        "body.trigger.at: must be in the future"
    )
    reserved = make_schedule(schedule_id="timeline")
    assert "body.id" in call(client, "POST", SCHEDULES, 422, json=reserved)["error"]["message"]
    call(client, "POST", SCHEDULES, 201, json=make_schedule())
    assert call(client, "POST", SCHEDULES, 409, json=make_schedule())["error"]["code"] == (
        "SCHEDULE_EXISTS"
    )
    assert call(client, "GET", f"{SCHEDULES}/nope", 404)["error"]["code"] == "SCHEDULE_NOT_FOUND"


def test_a_template_expands_to_announce_backup_and_restart(client: TestClient) -> None:
    body = {"template": "nightly-restart", "at": "04:00", "timezone": "Europe/Berlin"}
    created = call(client, "POST", SCHEDULES, 201, json=body)["data"]
    assert created["id"] == "nightly-restart"
    assert created["trigger"] == {"cron": "0 4 * * *", "timezone": "Europe/Berlin"}
    assert [s["action"] for s in created["steps"]] == ["announce", "backup", "restart"]
    assert created["steps"][2]["warn_before"] == [900, 300, 60, 10]
    action = datetime.fromisoformat(created["status"]["next_action_at"])
    assert action.astimezone(ZoneInfo("Europe/Berlin")).hour == 4


def test_close_disruptive_schedules_warn_when_saved(client: TestClient) -> None:
    backup = make_schedule(
        schedule_id="backup",
        trigger={"cron": "55 3 * * *", "timezone": "UTC"},
        steps=[{"action": "backup"}],
    )
    call(client, "POST", SCHEDULES, 201, json=backup)
    saved = call(client, "POST", SCHEDULES, 201, json=make_schedule())["data"]
    messages = [w["message"] for w in saved["warnings"] if w["code"] == "CLOSE_TO_OTHER_SCHEDULE"]
    assert messages == [
        "the restart at 04:00 is 5 minutes after the backup at 03:55 (schedule 'backup')"
    ]
    dst = make_schedule(
        schedule_id="dst",
        trigger={"cron": "30 2 * * *", "timezone": "Europe/Berlin"},
        steps=[{"action": "command", "command": "/autosavenow"}],
    )
    codes = {w["code"] for w in call(client, "POST", SCHEDULES, 201, json=dst)["data"]["warnings"]}
    assert "DST_SKIPPED" in codes


def test_skip_next_and_postpone_change_one_occurrence_and_survive_a_restart(
    settings: Settings,
) -> None:
    with TestClient(create_app(settings)) as client:
        call(client, "POST", SCHEDULES, 201, json=make_schedule())
        before = call(client, "GET", f"{SCHEDULES}/nightly", 200)["data"]["status"]
        first, second = (datetime.fromisoformat(t) for t in before["next_action_times"][:2])
        skipped = call(client, "POST", f"{SCHEDULES}/nightly/skip-next", 200)["data"]["status"]
        assert datetime.fromisoformat(skipped["skip_next"]["action_at"]) == first
        assert skipped["skip_next"]["by"] == "admin"
        moved = call(client, "POST", f"{SCHEDULES}/nightly/postpone", 200, json={"minutes": 30})
        status = moved["data"]["status"]
        assert datetime.fromisoformat(status["next_action_at"]) == first + timedelta(minutes=30)
        # Only that one: the one after is where it was.
        assert datetime.fromisoformat(status["next_action_times"][1]) == second
        timeline = call(client, "GET", f"{SCHEDULES}/timeline?hours=72", 200)["data"]
    with TestClient(create_app(settings)) as client:
        status = call(client, "GET", f"{SCHEDULES}/nightly", 200)["data"]["status"]
        assert datetime.fromisoformat(status["next_action_at"]) == first + timedelta(minutes=30)
        assert status["postponed"]["to"] == moved["data"]["status"]["postponed"]["to"]
        assert status["skip_next"] is not None
    kinds = [(e["kind"], e["source"]) for e in timeline["entries"]]
    assert ("countdown_start", "nightly") in kinds
    assert ("schedule_action", "nightly") in kinds


def test_holds_are_listed_until_they_expire_and_survive_a_restart(settings: Settings) -> None:
    until = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    with TestClient(create_app(settings)) as client:
        past = call(
            client, "POST", HOLDS, 422, json={"until": "2001-01-01T00:00:00Z", "reason": "x"}
        )
        assert past["error"]["message"] == "body.until: must be in the future"
        hold = call(client, "POST", HOLDS, 201, json={"until": until, "reason": "event night"})
        assert hold["data"]["scope"] == "disruptive"
    with TestClient(create_app(settings)) as client:
        holds = call(client, "GET", HOLDS, 200)["data"]["holds"]
        assert [h["reason"] for h in holds] == ["event night"]
        call(client, "DELETE", f"{HOLDS}/{holds[0]['id']}", 200)
        assert call(client, "GET", HOLDS, 200)["data"]["holds"] == []
        assert call(client, "DELETE", f"{HOLDS}/{holds[0]['id']}", 404)["error"]["code"] == (
            "HOLD_NOT_FOUND"
        )


def test_export_then_import_on_a_fresh_data_dir_gives_the_same_schedules(
    settings: Settings,
) -> None:
    with TestClient(create_app(settings)) as client:
        call(client, "POST", SCHEDULES, 201, json=make_schedule())
        call(
            client,
            "POST",
            SCHEDULES,
            201,
            json=make_schedule(
                schedule_id="hourly-save",
                trigger={"interval_seconds": 3600},
                steps=[{"action": "command", "command": "/autosavenow"}],
                only_if={"max_players": 0},
                defer={"retry_every_seconds": 60},
            ),
        )
        exported = call(client, "GET", f"{SCHEDULES}/export", 200)["data"]
        original = call(client, "GET", SCHEDULES, 200)["data"]["schedules"]
    fresh_dir = settings.data_dir.parent / "fresh"
    write_json(fresh_dir / "state" / API_SETTINGS_FILE, BUILTIN_JOBS_OFF, keep_backup=False)
    fresh = settings.model_copy(update={"data_dir": fresh_dir})
    with TestClient(create_app(fresh)) as client:
        dry = call(client, "PUT", f"{SCHEDULES}/import?dry_run=true", 200, json=exported)["data"]
        assert dry["created"] == ["hourly-save", "nightly"]
        assert call(client, "GET", SCHEDULES, 200)["data"]["schedules"] == []
        done = call(client, "PUT", f"{SCHEDULES}/import", 200, json=exported)["data"]
        assert done["created"] == ["hourly-save", "nightly"]
        imported = call(client, "GET", SCHEDULES, 200)["data"]["schedules"]
        definition = ("id", "name", "trigger", "enabled", "steps", "only_if", "defer")
        assert [{k: s[k] for k in definition} for s in imported] == [
            {k: s[k] for k in definition} for s in original
        ]
        # One bad schedule: nothing changes.
        broken = {
            **exported,
            "schedules": [
                *exported["schedules"][:1],
                make_schedule(schedule_id="bad", trigger={"cron": "61 * * * *"}),
            ],
        }
        error = call(client, "PUT", f"{SCHEDULES}/import", 422, json=broken)["error"]
        assert error["message"].startswith("body.schedules.1.trigger.cron:")
        assert len(call(client, "GET", SCHEDULES, 200)["data"]["schedules"]) == 2


def test_openapi_shows_the_step_union_and_every_route(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/schedules",
        "/schedules/{schedule_id}",
        "/schedules/timeline",
        "/schedules/export",
        "/schedules/import",
        "/schedules/{schedule_id}/cancel",
        "/schedules/{schedule_id}/skip-next",
        "/schedules/{schedule_id}/postpone",
        "/holds",
        "/holds/{hold_id}",
    ):
        assert f"/api/v1alpha1{path}" in paths, path
    schemas = spec["components"]["schemas"]
    steps = schemas["ScheduleCreate"]["properties"]["steps"]["items"]
    assert steps["discriminator"]["propertyName"] == "action"
    assert set(steps["discriminator"]["mapping"]) == {
        "update_mods",
        "announce",
        "command",
        "backup",
        "stop",
        "start",
        "restart",
        "install",
        "wait",
        "wait_until_empty",
    }
    assert schemas["ScheduleCreate"]["examples"]
