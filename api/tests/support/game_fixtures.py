"""Fixtures of an app whose game server is the fake, launched as a real child through
VS_SERVER_COMMAND; a conftest imports them to use them.

The fake's knobs are FAKE_VS_* variables of this process: the API passes its environment on
to the game server, as it does for the real one. `knobs` and `timings` are overridden per test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.gameserver import FAST_TIMINGS, fake_command
from tests.support.offline import BUILTIN_JOBS_OFF
from tests.support.server_process import free_port
from vintagestory_api.api_settings.service import API_SETTINGS_FILE
from vintagestory_api.app import create_app
from vintagestory_api.config import Settings
from vintagestory_api.kit.state_files import write_json


@pytest.fixture
def knobs() -> dict[str, Any]:
    return {}


@pytest.fixture
def timings() -> dict[str, Any]:
    return {}


@pytest.fixture
def game_port() -> int:
    return free_port()


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    return tmp_path / "control.fifo"


@pytest.fixture
def game_settings(
    settings: Settings,
    knobs: dict[str, Any],
    timings: dict[str, Any],
    game_port: int,
    monkeypatch: pytest.MonkeyPatch,
) -> Settings:
    for name in [n for n in os.environ if n.startswith("FAKE_VS_")]:
        monkeypatch.delenv(name)
    for name, value in {"time_scale": 0.02, **knobs}.items():
        monkeypatch.setenv(f"FAKE_VS_{name.upper()}", str(value))
    write_json(
        settings.state_dir / API_SETTINGS_FILE,
        {**BUILTIN_JOBS_OFF, **FAST_TIMINGS, **timings},
        keep_backup=False,
    )
    return settings.model_copy(
        update={
            "server_command": fake_command(),
            "server_port": game_port,
            "server_players_poll_seconds": 0.5,
        }
    )


@pytest.fixture
def game_app(game_settings: Settings) -> FastAPI:
    return create_app(game_settings)


@pytest.fixture
def game(game_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(game_app) as client:
        yield client
