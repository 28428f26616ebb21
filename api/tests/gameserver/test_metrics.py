"""The game server in /metrics and in the resource samples, with the fake as a real child."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.samples import Sample

from tests.support.fake_vs_client import FAKE_SERVER_SCRIPT, FakeServerControl
from tests.support.gameserver import ADMIN, SERVER, status, wait_state, wait_until
from tests.support.prometheus_text import parse, value
from vintagestory_api.gameserver.states import ServerState

CURRENT = "/api/v1alpha1/metrics/current"


@pytest.fixture
def knobs(fifo: Path) -> dict[str, Any]:
    return {"control": str(fifo)}


def scrape(client: TestClient) -> list[Sample]:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    return parse(response.text)


def states(samples: list[Sample]) -> dict[str, float]:
    return {s.labels["state"]: s.value for s in samples if s.name == "vsapi_gameserver_state"}


def scrape_until(client: TestClient, name: str, expected: float) -> list[Sample]:
    deadline = time.monotonic() + 5
    while True:
        samples = scrape(client)
        if value(samples, name) == expected:
            return samples
        assert time.monotonic() < deadline, f"{name} stayed {value(samples, name)}"
        time.sleep(0.02)


def sample_now(client: TestClient, app: FastAPI) -> dict[str, Any]:
    # The sampling job is off in these tests; take the one sample it would take.
    portal = client.portal
    assert portal is not None
    portal.call(app.state.metrics.sample)
    response = client.get(CURRENT, headers=ADMIN)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def test_series_and_samples_follow_start_players_crash_restart_and_stop(
    game: TestClient, game_app: FastAPI, fifo: Path
) -> None:
    control = FakeServerControl(fifo)
    idle = scrape(game)
    assert states(idle) == {s.value: 1.0 if s is ServerState.STOPPED else 0.0 for s in ServerState}
    assert value(idle, "vsapi_gameserver_up") == 0
    assert value(idle, "vsapi_gameserver_should_run") == 0
    assert math.isnan(value(idle, "vsapi_gameserver_ready_seconds"))
    assert value(idle, "vsapi_gameserver_crashes_total") == 0
    # Zero from the start for every reason, so the first restart is an increase.
    assert value(idle, "vsapi_gameserver_restarts_total", reason="crash") == 0
    assert value(idle, "vsapi_gameserver_restarts_total", reason="requested") == 0

    game.post(f"{SERVER}/start", headers=ADMIN)
    first = wait_state(game, "running")
    running = scrape(game)
    assert states(running)["running"] == 1
    assert sum(states(running).values()) == 1
    assert value(running, "vsapi_gameserver_up") == 1
    assert value(running, "vsapi_gameserver_should_run") == 1
    assert 0 < value(running, "vsapi_gameserver_ready_seconds") < 30
    assert value(running, "vsapi_gameserver_players_online") == 0

    control.join("Alice")
    control.join("Bob", port=51235)
    scrape_until(game, "vsapi_gameserver_players_online", 2)
    # CPU and memory are the supervised child's: the pid GET /server reports, the fake itself.
    sample = sample_now(game, game_app)
    assert sample["players_online"] == 2
    assert sample["game_server"]["pid"] == first["pid"]
    assert sample["game_server"]["rss_mib"] > 0
    assert str(FAKE_SERVER_SCRIPT) in psutil.Process(first["pid"]).cmdline()

    control.crash()
    restarted = wait_until(
        game, lambda s: s["state"] == "running" and s["pid"] != first["pid"], what="a restart"
    )
    after_crash = scrape(game)
    assert value(after_crash, "vsapi_gameserver_crashes_total") == 1
    assert value(after_crash, "vsapi_gameserver_restarts_total", reason="crash") == 1
    assert value(after_crash, "vsapi_gameserver_restarts_total", reason="requested") == 0
    assert value(after_crash, "vsapi_gameserver_up") == 1
    assert value(after_crash, "vsapi_gameserver_players_online") == 0

    assert game.post(f"{SERVER}/restart", headers=ADMIN).status_code == 202
    wait_until(
        game, lambda s: s["state"] == "running" and s["pid"] != restarted["pid"], what="restart"
    )
    requested = scrape(game)
    assert value(requested, "vsapi_gameserver_restarts_total", reason="requested") == 1
    assert value(requested, "vsapi_gameserver_crashes_total") == 1

    game.post(f"{SERVER}/stop", headers=ADMIN)
    wait_state(game, "stopped")
    stopped = scrape(game)
    assert states(stopped)["stopped"] == 1
    assert value(stopped, "vsapi_gameserver_up") == 0
    assert value(stopped, "vsapi_gameserver_should_run") == 0
    # The last start's time to ready outlives the process.
    assert 0 < value(stopped, "vsapi_gameserver_ready_seconds") < 30
    gone = sample_now(game, game_app)
    assert gone["game_server"] is None
    assert gone["players_online"] is None
    assert status(game)["pid"] is None
