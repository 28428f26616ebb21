from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.keys import ADMIN_KEY, MONITOR_KEY
from tests.support.server_process import ServerProcess


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        tmp_path / "data",
        env={"VS_API_KEY_ADMIN": ADMIN_KEY, "VS_API_KEY_MONITOR": MONITOR_KEY},
    )
    try:
        proc.wait_healthy()
        yield proc
    finally:
        proc.kill()


def test_invalid_setting_stops_startup_naming_the_variable(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VS_")}
    env.update({"VS_PORT": "notaport", "VS_DATA_DIR": str(tmp_path / "data")})
    result = subprocess.run(
        [sys.executable, "-m", "vintagestory_api"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert "VS_PORT" in result.stderr
    assert "notaport" in result.stderr
    assert not (tmp_path / "data").exists(), "nothing is created before settings are valid"


def test_every_log_line_is_json_and_no_key_is_logged(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.base_url, timeout=5) as http:
        assert http.get("/api/v1alpha1/auth/me", headers={"X-API-Key": ADMIN_KEY}).is_success
        assert http.get("/api/v1alpha1/auth/me", headers={"X-API-Key": MONITOR_KEY}).is_success
        wrong = http.get("/api/v1alpha1/auth/me", headers={"X-API-Key": ADMIN_KEY + "x"})
        assert wrong.status_code == 401
        assert http.get("/docs").is_success
        assert http.get("/nope").status_code == 404
    server.wait_for_log("auth_failed")
    server.signal(signal.SIGTERM)
    assert server.wait_exit() == 0
    lines = server.output()
    assert lines
    for line in lines:
        entry = json.loads(line)
        assert isinstance(entry, dict)
        assert ADMIN_KEY not in line
        assert MONITOR_KEY not in line
    events = [json.loads(line)["event"] for line in lines]
    assert "http_request" in events
    # uvicorn's own stdlib records went through the same JSON formatter
    assert any(event.startswith("uvicorn") for event in events)


def test_sigint_stops_the_server_cleanly(server: ServerProcess) -> None:
    server.signal(signal.SIGINT)
    assert server.wait_exit() == 0


def test_a_taken_port_is_refused_in_one_line_before_anything_starts(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("VS_")}
        env.update(
            {"VS_PORT": str(port), "VS_DATA_DIR": str(tmp_path / "data"), "VS_LOG_FORMAT": "json"}
        )
        result = subprocess.run(
            [sys.executable, "-m", "vintagestory_api"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    # Refused before the lifespan: no lock taken, no state written, no job registered.
    assert "api_started" not in result.stdout
    assert not (tmp_path / "data").exists()
