"""An app whose game server is the fake (a real child with a real WAL-mode world)."""

from __future__ import annotations

import os
from collections.abc import Iterator
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
def api_settings() -> dict[str, Any]:
    return {}


@pytest.fixture
def backup_settings(
    settings: Settings,
    knobs: dict[str, Any],
    api_settings: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> Settings:
    for name in [n for n in os.environ if n.startswith("FAKE_VS_")]:
        monkeypatch.delenv(name)
    for name, value in {"time_scale": 0.02, "write_interval_s": 1, **knobs}.items():
        monkeypatch.setenv(f"FAKE_VS_{name.upper()}", str(value))
    write_json(
        settings.state_dir / API_SETTINGS_FILE,
        {**BUILTIN_JOBS_OFF, **FAST_TIMINGS, **api_settings},
        keep_backup=False,
    )
    return settings.model_copy(
        update={
            "server_command": fake_command(),
            "server_port": free_port(),
            "server_players_poll_seconds": 0.5,
            "min_free_disk_bytes": 0,
        }
    )


@pytest.fixture
def backup_app(backup_settings: Settings) -> FastAPI:
    return create_app(backup_settings)


@pytest.fixture
def game(backup_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(backup_app) as client:
        yield client
