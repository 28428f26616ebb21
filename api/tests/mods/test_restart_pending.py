"""A mod change under a running game server (the fake, as a real child process) asks for a
restart on GET /server, and the restart clears it."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.gameserver import (
    ADMIN,
    FAST_TIMINGS,
    SERVER,
    fake_command,
    status,
    wait_state,
    wait_until,
)
from tests.support.mod_db import carryon_modinfo, publish, zip_bytes
from tests.support.offline import BUILTIN_JOBS_OFF
from tests.support.server_process import free_port
from tests.support.stub_server import StubServer
from tests.support.vs_wiring import set_game_version, stub_settings
from vintagestory_api.api_settings.service import API_SETTINGS_FILE
from vintagestory_api.app import create_app
from vintagestory_api.config import Settings
from vintagestory_api.kit.state_files import write_json

MODS = "/api/v1alpha1/mods"


@pytest.fixture
def game(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TestClient, StubServer]]:
    for name in [n for n in os.environ if n.startswith("FAKE_VS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("FAKE_VS_TIME_SCALE", "0.02")
    write_json(
        settings.state_dir / API_SETTINGS_FILE,
        {**BUILTIN_JOBS_OFF, **FAST_TIMINGS},
        keep_backup=False,
    )
    set_game_version(settings.data_dir, "1.21.3")
    with StubServer.running() as stub:
        game_settings = stub_settings(
            settings, stub, server_command=fake_command(), server_port=free_port()
        )
        with TestClient(create_app(game_settings)) as client:
            yield client, stub


def test_mod_changes_while_running_set_restart_pending_until_the_restart(
    game: tuple[TestClient, StubServer],
) -> None:
    client, stub = game
    publish(stub, "carryon", {v: zip_bytes(carryon_modinfo(v)) for v in ("1.12.0", "1.12.1")})
    # While stopped a change needs no restart: the next start reads the files anyway.
    stopped = client.post(MODS, json={"mod": "carryon", "version": "1.12.0"}, headers=ADMIN)
    assert stopped.json()["data"]["restart_pending"] is False
    assert client.post(f"{SERVER}/start", headers=ADMIN).status_code == 202
    wait_state(client, "running")
    assert status(client)["restart_pending"] == {"pending": False, "reasons": [], "at": None}

    updated = client.post(f"{MODS}/carryon/update", headers=ADMIN)
    disabled = client.post(f"{MODS}/carryon/disable", headers=ADMIN)

    assert updated.json()["data"]["restart_pending"] is True, updated.text
    assert disabled.json()["data"]["restart_pending"] is True, disabled.text
    assert status(client)["restart_pending"] == {
        "pending": True,
        "reasons": ["carryon 1.12.0 → 1.12.1", "carryon disabled"],
        "at": None,
    }
    first_pid = status(client)["pid"]
    assert client.post(f"{SERVER}/restart", headers=ADMIN).status_code == 202
    after = wait_until(
        client, lambda s: s["state"] == "running" and s["pid"] != first_pid, what="a new process"
    )
    assert after["restart_pending"] == {"pending": False, "reasons": [], "at": None}


def test_a_schedule_that_updates_mods_then_restarts_applies_them_and_clears_the_pending_restart(
    game: tuple[TestClient, StubServer],
) -> None:
    client, stub = game
    publish(stub, "carryon", {v: zip_bytes(carryon_modinfo(v)) for v in ("1.12.0", "1.12.1")})
    assert client.post(MODS, json={"mod": "carryon", "version": "1.12.0"}, headers=ADMIN).is_success
    # The install's own lookup is what GET /mods shows: the update the step will apply.
    wait_until_mods(client, lambda mods: mods[0]["moddb"]["update_available"])
    assert client.post(f"{SERVER}/start", headers=ADMIN).status_code == 202
    first_pid = wait_state(client, "running")["pid"]
    schedule = {
        "id": "mods",
        "name": "Mod updates",
        "trigger": {"cron": "0 4 1 1 *", "timezone": "UTC"},
        "steps": [{"action": "update_mods"}, {"action": "restart"}],
    }
    assert client.post("/api/v1alpha1/schedules", json=schedule, headers=ADMIN).status_code == 201
    assert client.post("/api/v1alpha1/jobs/schedule.mods/run", headers=ADMIN).status_code == 202
    run = wait_schedule_run(client, "mods")
    assert run["outcome"] == "succeeded", run
    update, restart = run["result"]["steps"]
    assert update["detail"] == "carryon 1.12.0 → 1.12.1"
    assert restart["outcome"] == "succeeded"
    after = status(client)
    assert after["pid"] != first_pid
    assert after["restart_pending"] == {"pending": False, "reasons": [], "at": None}
    [carryon] = client.get(MODS, headers=ADMIN).json()["data"]["mods"]
    assert carryon["version"] == "1.12.1"


def wait_until_mods(client: TestClient, predicate: Callable[[list[Any]], bool]) -> None:
    deadline = time.monotonic() + 15
    while True:
        mods = client.get(MODS, headers=ADMIN).json()["data"]["mods"]
        if mods and mods[0].get("moddb") and predicate(mods):
            return
        assert time.monotonic() < deadline, f"the mod check did not get there: {mods}"
        time.sleep(0.05)


def wait_schedule_run(client: TestClient, schedule_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        path = f"/api/v1alpha1/jobs/schedule.{schedule_id}/runs"
        runs = client.get(path, headers=ADMIN).json()["data"]["runs"]
        if runs and runs[0]["outcome"] != "running":
            found: dict[str, Any] = runs[0]
            return found
        assert time.monotonic() < deadline, f"no finished run of {schedule_id}: {runs}"
        time.sleep(0.05)
