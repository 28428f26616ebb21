from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from vintagestory_api.app import create_app
from vintagestory_api.config import Settings

from .keys import ADMIN_KEY, MONITOR_KEY


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir,
        api_key_admin=SecretStr(ADMIN_KEY),
        api_key_monitor=SecretStr(MONITOR_KEY),
        shutdown_grace_seconds=5,
        timezone="UTC",
    )


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


@pytest.fixture
def admin_headers() -> dict[str, str]:
    return {"X-API-Key": ADMIN_KEY}


@pytest.fixture
def monitor_headers() -> dict[str, str]:
    return {"X-API-Key": MONITOR_KEY}
