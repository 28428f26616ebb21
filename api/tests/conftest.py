from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.keys import ADMIN_KEY, MONITOR_KEY
from tests.support.offline import offline_settings
from vintagestory_api.app import create_app
from vintagestory_api.config import Settings


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def builtin_jobs_off() -> bool:
    """Override with False in a module that needs the settings file absent at startup."""
    return True


@pytest.fixture
def settings(data_dir: Path, builtin_jobs_off: bool) -> Settings:
    return offline_settings(
        data_dir, admin_key=ADMIN_KEY, monitor_key=MONITOR_KEY, builtin_jobs_off=builtin_jobs_off
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
