from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import AnyHttpUrl, SecretStr

from vintagestory_api.app import create_app
from vintagestory_api.config import Settings
from vintagestory_api.services.api_settings import API_SETTINGS_FILE
from vintagestory_api.services.state_files import write_json

from .keys import ADMIN_KEY, MONITOR_KEY


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


# The built-in jobs (version check, mod refresh, metrics sampling) stay off in tests unless a test
# is about them: it then writes its own intervals into the settings file before the app starts.
BUILTIN_JOBS_OFF = {
    "server_versions_refresh_interval": 0,
    "mod_list_refresh_interval": 0,
    "metrics_collection_interval": 0,
}


@pytest.fixture
def builtin_jobs_off() -> bool:
    """Override with False in a module that needs the settings file absent at startup."""
    return True


@pytest.fixture
def settings(data_dir: Path, builtin_jobs_off: bool) -> Settings:
    if builtin_jobs_off:
        write_json(data_dir / "state" / API_SETTINGS_FILE, BUILTIN_JOBS_OFF, keep_backup=False)
    return Settings(
        data_dir=data_dir,
        api_key_admin=SecretStr(ADMIN_KEY),
        api_key_monitor=SecretStr(MONITOR_KEY),
        shutdown_grace_seconds=5,
        timezone="UTC",
        # Nothing leaves the machine even when a test turns the built-in jobs on: port 9 on
        # loopback refuses at once.
        versions_url=AnyHttpUrl("http://127.0.0.1:9"),
        mod_api_url=AnyHttpUrl("http://127.0.0.1:9/api"),
        # Retrying a refusing port only slows the shutdown drain of tests that leave jobs on.
        http_retries=0,
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
