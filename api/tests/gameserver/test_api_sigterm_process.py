"""SIGTERM to the API process while it supervises a running game server (both real processes)."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import psutil

from tests.support.fake_vs_client import fake_server_env, world_writes
from tests.support.gameserver import ADMIN, SERVER, fake_command
from tests.support.keys import ADMIN_KEY
from tests.support.server_process import ServerProcess, free_port


def test_sigterm_to_the_api_stops_the_game_server_with_stop_first_and_both_exit_0(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    env = fake_server_env(time_scale=0.02)
    env = {key: value for key, value in env.items() if not key.startswith("VS_")}
    env.update(
        {
            "VS_API_KEY_ADMIN": ADMIN_KEY,
            "VS_SERVER_COMMAND": fake_command(),
            "VS_SERVER_PORT": str(free_port()),
        }
    )
    api = ServerProcess(data, env=env)
    try:
        api.wait_healthy()
        started = httpx.post(f"{api.base_url}{SERVER}/start", headers=ADMIN, timeout=5)
        assert started.status_code == 202, started.text
        ready = api.wait_for_log("game_server_ready")
        assert ready["state"] == "running"
        pid = httpx.get(f"{api.base_url}{SERVER}", headers=ADMIN, timeout=5).json()["data"]["pid"]
        child = psutil.Process(pid)
        api.signal(signal.SIGTERM)
        assert api.wait_exit(timeout=60) == 0
        stopped = api.wait_for_log("game_server_stopped")
        assert stopped["detail"] == "exit 0, ended by stop_command"
        assert not child.is_running()
        world = data / "serverdata" / "Saves" / "default.vcdbs"
        assert world_writes(world)[-1][1] == "shutdown"
        log = (data / "serverdata" / "Logs" / "server-main.log").read_text()
        assert "Handling Console Command /stop" in log
    finally:
        api.kill()
