"""Schedules against the fake game server as a real child, in seconds instead of minutes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.schedules.conftest import HOLDS, SCHEDULES, call, make_schedule, wait_run, wait_view
from tests.support.fake_vs_client import FakeServerControl
from tests.support.gameserver import ADMIN, SERVER, console_texts, status, wait_state, wait_until

FAR = {"cron": "0 4 1 1 *", "timezone": "UTC"}


def _run_now(client: TestClient, schedule_id: str) -> None:
    call(client, "POST", f"/api/v1alpha1/jobs/schedule.{schedule_id}/run", 202)


def _console(client: TestClient) -> list[dict[str, Any]]:
    response = client.get(f"{SERVER}/console", params={"limit": 5000}, headers=ADMIN)
    entries: list[dict[str, Any]] = response.json()["data"]["entries"]
    return entries


def _at(entries: list[dict[str, Any]], text: str) -> datetime:
    found = [e for e in entries if e["text"].startswith(f"Handling Console Command {text}")]
    assert found, f"no {text!r} in the console"
    return datetime.fromisoformat(found[0]["time"])


def _start(game: TestClient) -> int:
    game.post(f"{SERVER}/start", headers=ADMIN)
    pid: int = wait_state(game, "running")["pid"]
    return pid


def test_a_restart_counts_down_then_stops_at_the_moment_and_is_ready_again(
    game: TestClient,
) -> None:
    first_pid = _start(game)
    moment = datetime.now(UTC) + timedelta(seconds=8)
    steps = [{"action": "restart", "warn_before": [6, 2], "message": "Restart in {remaining}"}]
    body = make_schedule(schedule_id="restart", trigger={"at": moment.isoformat()}, steps=steps)
    saved = call(game, "POST", SCHEDULES, 201, json=body)["data"]["status"]
    assert datetime.fromisoformat(saved["next_run_at"]) == moment - timedelta(seconds=6)
    counting = wait_view(game, "restart", lambda v: v["status"]["running"] is not None)
    current = counting["status"]["running"]
    assert datetime.fromisoformat(current["action_at"]) == moment
    assert current["next_warning"] in ("Restart in 6 seconds", "Restart in 2 seconds")
    run = wait_run(game, "restart", timeout=30)
    assert run["outcome"] == "succeeded", run
    entries = _console(game)
    six = _at(entries, "/announce Restart in 6 seconds")
    two = _at(entries, "/announce Restart in 2 seconds")
    stop = _at(entries, "/stop")
    assert abs((moment - six).total_seconds() - 6) < 1
    assert abs((moment - two).total_seconds() - 2) < 1
    assert -0.1 < (stop - moment).total_seconds() < 1
    [step] = run["result"]["steps"]
    assert step["action"] == "restart"
    assert step["outcome"] == "succeeded"
    assert datetime.fromisoformat(step["started_at"]) >= moment - timedelta(seconds=0.1)
    assert datetime.fromisoformat(step["finished_at"]) > datetime.fromisoformat(step["started_at"])
    running = status(game)
    assert running["state"] == "running"
    assert running["pid"] != first_pid


@pytest.mark.parametrize("knobs", [{"mode": "hang_on_stop"}])
@pytest.mark.parametrize(
    "timings", [{"server_stop_timeout_seconds": 2, "server_kill_timeout_seconds": 1}]
)
def test_a_restart_that_hangs_fails_with_the_step_timeout_and_the_server_ends_known(
    game: TestClient,
) -> None:
    first_pid = _start(game)
    steps = [{"action": "restart", "timeout_seconds": 1}]
    call(game, "POST", SCHEDULES, 201, json=make_schedule(trigger=FAR, steps=steps))
    _run_now(game, "nightly")
    run = wait_run(game, "nightly")
    assert run["outcome"] == "failed"
    assert run["error"]["message"].startswith("step 0 (restart) timed_out: timed out after 1 s;")
    assert "stopping" in run["error"]["message"]
    assert run["result"]["steps"][0]["outcome"] == "timed_out"
    # The supervisor's escalation goes on without the step: SIGKILL, then the restart.
    after = wait_until(
        game, lambda s: s["state"] == "running" and s["pid"] != first_pid, timeout=20
    )
    assert after["last_exit"]["ended_by"] == "sigkill"


@pytest.fixture
def knobs(fifo: Path) -> dict[str, Any]:
    return {"control": str(fifo)}


def test_with_players_online_a_deferred_run_gives_up_or_runs_once_they_leave(
    game: TestClient, fifo: Path
) -> None:
    _start(game)
    control = FakeServerControl(fifo)
    control.join("Alice")
    control.join("Bob")
    wait_until(game, lambda s: s["players_online"] == 2, what="two players")
    gated = make_schedule(
        trigger=FAR,
        steps=[{"action": "command", "command": "/autosavenow"}],
        only_if={"max_players": 0},
        defer={
            "retry_every_seconds": 1,
            "give_up_after_seconds": 5,
            "then": "skip",
            "announce": "Saving once you are all gone",
        },
    )
    call(game, "POST", SCHEDULES, 201, json=gated)
    _run_now(game, "nightly")
    skipped = wait_run(game, "nightly")
    assert skipped["outcome"] == "skipped"
    assert skipped["reason"] == ("2 players online, more than max_players 0 after waiting 5 s")
    assert "Handling Console Command /announce Saving once you are all gone" in console_texts(game)
    _run_now(game, "nightly")
    wait_view(game, "nightly", lambda v: (v["status"]["running"] or {}).get("phase") == "deferred")
    control.leave("Alice")
    control.leave("Bob")
    left = datetime.now(UTC)
    ran = wait_run(game, "nightly")
    assert ran["outcome"] == "succeeded", ran
    assert (datetime.fromisoformat(ran["finished_at"]) - left).total_seconds() < 2.5


def test_cancel_holds_and_skip_next_leave_the_server_alone(game: TestClient) -> None:
    pid = _start(game)
    countdown = make_schedule(
        schedule_id="restart", trigger=FAR, steps=[{"action": "restart", "warn_before": [30]}]
    )
    call(game, "POST", SCHEDULES, 201, json=countdown)
    _run_now(game, "restart")
    wait_view(game, "restart", lambda v: (v["status"]["running"] or {}).get("phase") == "countdown")
    cancelled = call(game, "POST", f"{SCHEDULES}/restart/cancel", 200)["data"]
    assert cancelled["status"]["running"] is None
    run = wait_run(game, "restart")
    assert (run["outcome"], run["reason"]) == ("cancelled", "cancelled by admin")
    texts = console_texts(game)
    assert "Handling Console Command /announce The scheduled restart is cancelled" in texts
    assert not any(t.startswith("Handling Console Command /stop") for t in texts)
    assert call(game, "POST", f"{SCHEDULES}/restart/cancel", 409)["error"]["code"] == (
        "NO_RUN_IN_PROGRESS"
    )

    # An active hold skips the disruptive schedule with its reason, not the other one.
    until = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    hold = call(game, "POST", HOLDS, 201, json={"until": until, "reason": "event night"})["data"]
    save = make_schedule(
        schedule_id="save", trigger=FAR, steps=[{"action": "command", "command": "/autosavenow"}]
    )
    call(game, "POST", SCHEDULES, 201, json=save)
    _run_now(game, "restart")
    held = wait_run(game, "restart")
    assert held["outcome"] == "skipped"
    assert "event night" in held["reason"]
    assert hold["id"] in held["reason"]
    _run_now(game, "save")
    assert wait_run(game, "save")["outcome"] == "succeeded"
    call(game, "DELETE", f"{HOLDS}/{hold['id']}", 200)

    # An expired hold does nothing.
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    call(game, "POST", HOLDS, 201, json={"until": soon, "reason": "brief", "scope": "all"})
    wait_until(game, lambda _: call(game, "GET", HOLDS, 200)["data"]["holds"] == [], what="expiry")
    quick = make_schedule(schedule_id="quick", trigger=FAR, steps=[{"action": "restart"}])
    call(game, "POST", SCHEDULES, 201, json=quick)
    _run_now(game, "quick")
    assert wait_run(game, "quick")["outcome"] == "succeeded"
    assert status(game)["pid"] != pid

    # skip-next: the one occurrence is recorded as skipped by the role; nothing else changes.
    moment = datetime.now(UTC) + timedelta(seconds=2)
    once = make_schedule(
        schedule_id="once",
        trigger={"at": moment.isoformat()},
        steps=[{"action": "command", "command": "/autosavenow"}],
    )
    call(game, "POST", SCHEDULES, 201, json=once)
    call(game, "POST", f"{SCHEDULES}/once/skip-next", 200)
    skipped = wait_run(game, "once")
    assert (skipped["outcome"], skipped["reason"]) == ("skipped", "skipped by admin")
    assert call(game, "GET", f"{SCHEDULES}/once", 200)["data"]["status"]["skip_next"] is None


@pytest.mark.parametrize("knobs", [{"backup_s": 150}])
def test_a_restart_after_a_backup_waits_for_the_verified_backup(game: TestClient) -> None:
    first_pid = _start(game)
    steps = [{"action": "backup"}, {"action": "restart"}]
    call(game, "POST", SCHEDULES, 201, json=make_schedule(trigger=FAR, steps=steps))
    _run_now(game, "nightly")
    wait_view(game, "nightly", lambda v: (v["status"]["running"] or {}).get("action") == "backup")
    # The backup holds the game server: a manual restart meanwhile is refused, naming it.
    refused = game.post(f"{SERVER}/restart", headers=ADMIN)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "SERVER_BUSY"
    assert "world backup" in refused.json()["error"]["message"]
    run = wait_run(game, "nightly", timeout=30)
    assert run["outcome"] == "succeeded", run
    backup, restart = run["result"]["steps"]
    assert (backup["action"], backup["outcome"]) == ("backup", "succeeded")
    assert "verified" in backup["detail"]
    # The fake's backup takes about 3 s; the restart began only once it was verified.
    entries = _console(game)
    complete = next(e for e in entries if e["text"].startswith("Backup complete"))
    assert _at(entries, "/stop") > datetime.fromisoformat(complete["time"])
    assert datetime.fromisoformat(restart["started_at"]) >= datetime.fromisoformat(
        backup["finished_at"]
    )
    stored = call(game, "GET", "/api/v1alpha1/backups", 200)["data"]["backups"]
    assert [(b["trigger"], b["method"]) for b in stored] == [("schedule", "genbackup")]
    assert status(game)["pid"] != first_pid
