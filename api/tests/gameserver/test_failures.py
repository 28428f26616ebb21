"""Each failure mode of the fake server, supervised as a real child process."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.gameserver import (
    ADMIN,
    SERVER,
    console_texts,
    events,
    status,
    wait_state,
    wait_until,
)
from vintagestory_api.gameserver.errors import LifecycleInProgress
from vintagestory_api.gameserver.service import GameServerService


def _kinds(client: TestClient) -> list[str]:
    return [event["kind"] for event in reversed(events(client))]


@pytest.mark.parametrize(
    ("knobs", "crash_exit"),
    [
        ({"mode": "crash_startup", "crash_exit": 0}, 0),
        ({"mode": "crash_runtime", "crash_after_s": 0.5}, None),
    ],
    ids=["crash_startup_exit_0", "crash_runtime_sigabrt"],
)
def test_crashes_are_restarted_then_given_up_after_the_crash_loop_limit(
    game: TestClient, crash_exit: int | None
) -> None:
    assert game.post(f"{SERVER}/start", headers=ADMIN).status_code == 202
    # Backoff 1 s, then 2 s: the third crash within ten minutes ends the retries.
    gave_up = wait_until(game, lambda s: s["crash_loop"], timeout=30, what="the crash loop")
    assert gave_up["state"] == "crashed"
    last = gave_up["last_exit"]
    assert last["requested"] is False
    assert last["ended_by"] == "crash"
    if crash_exit is None:
        assert last["signal"] == 6
    else:
        assert last["code"] == crash_exit
    assert any("Crash written to file at" in line for line in last["last_lines"])
    kinds = _kinds(game)
    assert kinds.count("crashed") == 3
    assert kinds.count("auto_restart") == 2
    assert kinds[-1] == "gave_up"
    health = game.get("/healthz").json()["data"]
    assert health["status"] == "degraded"
    assert health["game_server"]["status"] == "degraded"
    assert not gave_up["restart_pending"]["pending"]
    # An admin's start is a fresh chance.
    assert game.post(f"{SERVER}/start", headers=ADMIN).status_code == 202
    assert status(game)["crash_loop"] is False


@pytest.mark.parametrize("knobs", [{"mode": "selfstop_errors", "selfstop_after_s": 0.5}])
def test_a_self_shutdown_with_exit_0_is_a_crash_too(game: TestClient) -> None:
    game.post(f"{SERVER}/start", headers=ADMIN)
    crashed = wait_until(game, lambda s: s["last_exit"] is not None, timeout=20)
    last = crashed["last_exit"]
    assert last["code"] == 0
    assert last["requested"] is False
    assert last["ended_by"] == "self"
    assert last["stop_reason"].startswith("Too many errors")
    assert "crashed" in _kinds(game)
    assert game.post(f"{SERVER}/stop", headers=ADMIN).status_code in (200, 202)


@pytest.mark.parametrize("knobs", [{"mode": "no_ready"}])
@pytest.mark.parametrize("timings", [{"server_start_timeout_seconds": 1}])
def test_no_ready_hits_the_start_timeout_and_is_stopped(game: TestClient) -> None:
    game.post(f"{SERVER}/start", headers=ADMIN)
    assert status(game)["state"] == "starting"
    stopped = wait_state(game, "stopped", timeout=15)
    last = stopped["last_exit"]
    assert last["requested"] is True
    assert last["ended_by"] == "sigterm"
    assert last["code"] == 0
    assert "start_timeout" in _kinds(game)
    assert "ready" not in _kinds(game)


@pytest.mark.parametrize("knobs", [{"mode": "ignore_sigterm"}])
@pytest.mark.parametrize(
    "timings", [{"server_stop_timeout_seconds": 1, "server_kill_timeout_seconds": 1}]
)
def test_ignore_sigterm_ends_by_sigkill_after_both_timeouts(game: TestClient) -> None:
    game.post(f"{SERVER}/start", headers=ADMIN)
    wait_state(game, "running")
    game.post(f"{SERVER}/stop", headers=ADMIN)
    stopped = wait_state(game, "stopped", timeout=15)
    last = stopped["last_exit"]
    assert last["ended_by"] == "sigkill"
    assert last["signal"] == 9
    assert last["requested"] is True


@pytest.mark.parametrize("knobs", [{"mode": "slow_stop", "stop_s": 3}])
@pytest.mark.parametrize(
    "timings", [{"server_stop_timeout_seconds": 20, "server_kill_timeout_seconds": 1}]
)
def test_slow_stop_is_waited_for_and_never_killed(game: TestClient) -> None:
    game.post(f"{SERVER}/start", headers=ADMIN)
    wait_state(game, "running")
    game.post(f"{SERVER}/stop", headers=ADMIN)
    # Another lifecycle action while the save runs is refused, not queued.
    busy = game.post(f"{SERVER}/start", headers=ADMIN)
    assert busy.status_code == 409
    assert busy.json()["error"]["code"] == "SERVER_BUSY"
    stopped = wait_state(game, "stopped", timeout=20)
    last = stopped["last_exit"]
    assert last["ended_by"] == "stop_command"
    assert last["code"] == 0
    assert "Stopped the server!" in last["last_lines"]


@pytest.mark.parametrize("knobs", [{"mode": "missing_runtime"}])
def test_missing_runtime_reports_the_runtime_to_install(game: TestClient) -> None:
    game.post(f"{SERVER}/start", headers=ADMIN)
    crashed = wait_state(game, "crashed")
    last = crashed["last_exit"]
    assert last["code"] == 150
    assert last["error"]["code"] == "DOTNET_RUNTIME_MISSING"
    assert "Microsoft.NETCore.App 8.0.0" in last["error"]["message"]
    # Restarting cannot help: no retry is scheduled.
    assert crashed["restart_pending"]["pending"] is False
    health = game.get("/healthz").json()["data"]["game_server"]
    assert health["status"] == "degraded"


@pytest.mark.parametrize("knobs", [{"mode": "hang_on_stop"}])
@pytest.mark.parametrize(
    "timings", [{"server_stop_timeout_seconds": 1, "server_kill_timeout_seconds": 1}]
)
def test_a_server_hanging_after_its_save_ends_by_sigkill_with_the_world_saved(
    game: TestClient,
) -> None:
    game.post(f"{SERVER}/start", headers=ADMIN)
    wait_state(game, "running")
    assert game.post(f"{SERVER}/stop", headers=ADMIN).status_code == 202
    hanging = wait_until(
        game,
        lambda s: any("Waiting for a server thread" in t for t in console_texts(game, 50)),
        what="the hang",
    )
    assert hanging["state"] == "stopping"
    stopped = wait_state(game, "stopped", timeout=15)
    last = stopped["last_exit"]
    assert last["ended_by"] == "sigkill"
    assert last["signal"] == 9
    assert last["requested"] is True
    # The save ran before the hang: killing it then lost nothing.
    texts = console_texts(game)
    assert any(t.startswith("World saved!") for t in texts)
    assert "Stopped the server!" not in texts


@pytest.mark.parametrize("knobs", [{"mode": "slow_stop", "stop_s": 2}])
def test_the_lifecycle_hold_refuses_starts_and_stops_and_is_refused_during_a_stop(
    game_app: FastAPI, game: TestClient
) -> None:
    service: GameServerService = game_app.state.gameserver
    # The hold is the facade other domains (backups, schedules) take around their work.
    portal = game.portal
    assert portal is not None
    with portal.wrap_async_context_manager(service.lifecycle("world backup")):
        for action in ("start", "stop", "restart"):
            refused = game.post(f"{SERVER}/{action}", headers=ADMIN)
            assert refused.status_code == 409, action
            error = refused.json()["error"]
            assert error["code"] == "SERVER_BUSY"
            assert "world backup" in error["message"]
        assert status(game)["state"] == "stopped"
    # Released: the next action goes ahead.
    assert game.post(f"{SERVER}/start", headers=ADMIN).status_code == 202
    wait_state(game, "running")
    assert game.post(f"{SERVER}/stop", headers=ADMIN).status_code == 202
    # While the save runs, other work cannot take the hold either.
    with pytest.raises(LifecycleInProgress, match="stop"):
        portal.wrap_async_context_manager(service.lifecycle("world backup")).__enter__()
    wait_state(game, "stopped", timeout=20)
    with portal.wrap_async_context_manager(service.lifecycle("world backup")):
        assert status(game)["state"] == "stopped"
