"""Start, ready, stop and the API's shutdown, against the fake server as a real child process."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.fake_vs_client import world_writes
from tests.support.gameserver import ADMIN, SERVER, console_texts, events, status, wait_state
from vintagestory_api.config import Settings
from vintagestory_api.gameserver.service import GameServerService
from vintagestory_api.gameserver.states import ServerState


@pytest.fixture
def knobs() -> dict[str, Any]:
    # A start of about a second: long enough to probe the port while it is starting.
    return {"time_scale": 0.08}


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_start_is_starting_until_the_ready_line_and_an_open_port_does_not_count(
    game: TestClient, game_port: int
) -> None:
    assert status(game)["state"] == "stopped"
    response = game.post(f"{SERVER}/start", headers=ADMIN)
    assert response.status_code == 202
    assert response.json()["data"]["state"] == "starting"
    deadline = time.monotonic() + 10
    while not _port_open(game_port):
        assert time.monotonic() < deadline, "the fake never listened"
        time.sleep(0.01)
    # The fake listens from its Configuration step on, long before the ready line.
    probed = status(game)
    assert probed["state"] == "starting"
    assert probed["ready_at"] is None
    running = wait_state(game, "running")
    assert running["ready_at"] is not None
    assert running["pid"] == probed["pid"]
    assert running["version"] == "1.21.6"
    texts = console_texts(game)
    assert any(t.startswith("Dedicated Server now running on Port") for t in texts)
    kinds = [e["kind"] for e in reversed(events(game))]
    assert kinds[:3] == ["start_requested", "spawned", "ready"]


def test_start_while_running_is_200_and_no_second_process(game: TestClient) -> None:
    game.post(f"{SERVER}/start", headers=ADMIN)
    pid = wait_state(game, "running")["pid"]
    again = game.post(f"{SERVER}/start", headers=ADMIN)
    assert again.status_code == 200
    assert again.json()["data"]["pid"] == pid
    spawned = [e for e in events(game) if e["kind"] == "spawned"]
    assert len(spawned) == 1


def test_stop_sends_stop_waits_for_the_save_and_keeps_the_last_lines(
    game: TestClient, settings: Settings
) -> None:
    game.post(f"{SERVER}/start", headers=ADMIN)
    pid = wait_state(game, "running")["pid"]
    response = game.post(f"{SERVER}/stop", headers=ADMIN)
    assert response.status_code == 202
    assert response.json()["data"]["state"] == "stopping"
    stopped = wait_state(game, "stopped")
    last = stopped["last_exit"]
    assert last["requested"] is True
    assert last["ended_by"] == "stop_command"
    assert last["code"] == 0
    assert last["stop_reason"] == "Shutdown via server command"
    assert "Stopped the server!" in last["last_lines"]
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    world = settings.data_dir / "serverdata" / "Saves" / "default.vcdbs"
    assert "shutdown" in [kind for _, kind in world_writes(world)]
    # Stopping a stopped server has nothing to do.
    assert game.post(f"{SERVER}/stop", headers=ADMIN).status_code == 200


@pytest.mark.parametrize("knobs", [{"time_scale": 0.02}])
def test_state_listeners_see_every_change_in_order(game: TestClient, game_app: FastAPI) -> None:
    service: GameServerService = game_app.state.gameserver
    seen: list[ServerState] = []
    service.add_state_listener(seen.append)
    game.post(f"{SERVER}/start", headers=ADMIN)
    wait_state(game, "running")
    game.post(f"{SERVER}/stop", headers=ADMIN)
    wait_state(game, "stopped")
    assert seen == ["starting", "running", "stopping", "stopped"]


def test_restart_stops_then_starts_a_new_process(game: TestClient) -> None:
    game.post(f"{SERVER}/start", headers=ADMIN)
    first = wait_state(game, "running")["pid"]
    assert game.post(f"{SERVER}/restart", headers=ADMIN).status_code == 202
    running = wait_state(game, "running")
    assert running["pid"] != first
    assert running["last_exit"]["ended_by"] == "stop_command"
    requested = [e for e in events(game) if e["kind"] == "restart_requested"]
    assert requested[0]["role"] == "admin"


def test_api_shutdown_stops_the_game_server_gracefully_first(
    game_app: FastAPI, settings: Settings
) -> None:
    with TestClient(game_app) as client:
        client.post(f"{SERVER}/start", headers=ADMIN)
        pid = wait_state(client, "running")["pid"]
        child = psutil.Process(pid)
    # The lifespan has ended: the child got /stop, saved, exited 0 and was reaped.
    assert not child.is_running()
    world = settings.data_dir / "serverdata" / "Saves" / "default.vcdbs"
    assert world_writes(world)[-1][1] == "shutdown"
    log = (settings.data_dir / "serverdata" / "Logs" / "server-main.log").read_text()
    assert "Handling Console Command /stop" in log


def test_the_game_server_runs_in_its_own_session(game: TestClient) -> None:
    game.post(f"{SERVER}/start", headers=ADMIN)
    pid = wait_state(game, "running")["pid"]
    # A Ctrl-C in the API's terminal goes to the API's process group only.
    assert os.getsid(pid) == pid
    assert os.getpgid(pid) != os.getpgid(0)


@pytest.fixture
def no_command(settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    # No dotnet anywhere on PATH, whatever this machine has.
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    return settings


def test_without_files_or_command_it_is_not_installed(no_command: Settings) -> None:
    from vintagestory_api.app import create_app

    with TestClient(create_app(no_command)) as client:
        assert status(client)["state"] == "not_installed"
        response = client.post(f"{SERVER}/start", headers=ADMIN)
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "SERVER_NOT_INSTALLED"


def test_a_real_launch_without_dotnet_is_refused_naming_the_runtime(no_command: Settings) -> None:
    from vintagestory_api.app import create_app

    server_dir = no_command.data_dir / "server"
    server_dir.mkdir(parents=True)
    (server_dir / "VintagestoryServer.dll").write_bytes(b"")
    (server_dir / "current_version").write_text("1.22.0\n")
    with TestClient(create_app(no_command)) as client:
        assert status(client)["state"] == "stopped"
        response = client.post(f"{SERVER}/start", headers=ADMIN)
        assert response.status_code == 409
        error = response.json()["error"]
        assert error["code"] == "DOTNET_RUNTIME_MISSING"
        assert ".NET 10" in error["message"]
        assert status(client)["state"] == "stopped"
