"""Test helpers for the versions and mods features: settings aimed at the stub, mod archives,
and an app with both services wired as the lifespan wires them."""

from __future__ import annotations

import io
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import Depends, FastAPI
from pydantic import AnyHttpUrl

from vintagestory_api.app import API_PREFIX, create_app
from vintagestory_api.config import Settings
from vintagestory_api.deps import get_role
from vintagestory_api.models.envelope import error_responses
from vintagestory_api.routers import mods as mods_router
from vintagestory_api.routers import versions as versions_router
from vintagestory_api.services.http import create_http_client
from vintagestory_api.services.mods import ModsService, build_mods_service
from vintagestory_api.services.versions import VersionsService, build_versions_service

from .keys import ADMIN_KEY
from .stub_server import FIXTURES, StubServer

ADMIN = {"X-API-Key": ADMIN_KEY}

# Short enough that every fault test ends in about a second.
FAST_HTTP: dict[str, Any] = {
    "http_connect_timeout": 0.5,
    "http_read_timeout": 0.5,
    "http_request_deadline": 3.0,
    "http_retries": 1,
    "http_retry_backoff": 0.01,
}


def stub_settings(settings: Settings, stub: StubServer, **overrides: Any) -> Settings:
    return settings.model_copy(
        update={
            "versions_url": AnyHttpUrl(stub.versions_url),
            "mod_api_url": AnyHttpUrl(stub.mod_api_url),
            **FAST_HTTP,
            **overrides,
        }
    )


def mod_zip(path: Path, modinfo: bytes | str, extra: dict[str, bytes] | None = None) -> Path:
    """A mod archive with `modinfo` as its `modinfo.json`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("modinfo.json", modinfo)
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    path.write_bytes(buffer.getvalue())
    return path


def install_fixture_mods(data_dir: Path, game_version: str | None) -> Path:
    """Carry On 1.12.1 and smex 0.9.4 as zips, and the installed game version."""
    mods_dir = data_dir / "serverdata" / "Mods"
    mod_zip(mods_dir / "CarryOn-1.21.0_v1.12.1.zip", (FIXTURES / "modinfo.json").read_bytes())
    mod_zip(mods_dir / "smex_0.9.4.zip", (FIXTURES / "modinfo-smex.json").read_bytes())
    if game_version is not None:
        set_game_version(data_dir, game_version)
    return mods_dir


def set_game_version(data_dir: Path, version: str) -> None:
    (data_dir / "server").mkdir(parents=True, exist_ok=True)
    (data_dir / "server" / "current_version").write_text(version + "\n")


def _has_route(app: FastAPI, path: str) -> bool:
    return any(getattr(route, "path", None) == path for route in app.routes)


@asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app with its real lifespan, the versions and mods services on `app.state`, and a
    client talking to it in this event loop."""
    app = create_app(settings)
    # Until the lifespan builds these services and app.py mounts their routers, do it here the
    # same way: one shared HTTP client, then the services on top of it.
    for router in (versions_router.router, mods_router.router):
        if not _has_route(app, API_PREFIX + router.prefix):
            app.include_router(
                router,
                prefix=API_PREFIX,
                dependencies=[Depends(get_role)],
                responses=error_responses(401),
            )
    async with app.router.lifespan_context(app):
        owned: httpx.AsyncClient | None = None
        if getattr(app.state, "versions", None) is None:
            owned = create_http_client(settings)
            app.state.versions = build_versions_service(settings, owned)
            app.state.mods = build_mods_service(settings, owned)
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                yield app, client
        finally:
            if owned is not None:
                await owned.aclose()


def versions_of(app: FastAPI) -> VersionsService:
    service: VersionsService = app.state.versions
    return service


def mods_of(app: FastAPI) -> ModsService:
    service: ModsService = app.state.mods
    return service
