"""Helpers for install tests: settings aimed at a stub CDN, and waiting for an operation."""

from __future__ import annotations

import asyncio
import shlex
import sys
import time
from typing import Any

import httpx
from fastapi.testclient import TestClient
from pydantic import AnyHttpUrl

from tests.support.server_tarball import StubCdn
from tests.support.vs_wiring import FAST_HTTP
from vintagestory_api.config import Settings

SERVER = "/api/v1alpha1/server"
INSTALL = f"{SERVER}/install"
ROLLBACK = f"{SERVER}/rollback"
# The version that is current is what runs: its own launcher, from its own directory.
LAUNCH_CURRENT = shlex.join([sys.executable, "{server_dir}/server.py"])


def install_settings(settings: Settings, cdn: StubCdn, **overrides: Any) -> Settings:
    return settings.model_copy(
        update={
            "versions_url": AnyHttpUrl(cdn.url),
            "cdn_url": AnyHttpUrl(cdn.url),
            "server_command": LAUNCH_CURRENT,
            "install_max_download_bytes": 1024 * 1024,
            **FAST_HTTP,
            # A connect to the stub on loopback succeeds at once or is refused at once; only a
            # starved event loop (a loaded CI machine) takes longer, which is no failure here.
            "http_connect_timeout": 5.0,
            **overrides,
        }
    )


def _finished(response: httpx.Response) -> dict[str, Any] | None:
    assert response.status_code == 200, response.text
    op: dict[str, Any] | None = response.json()["data"]
    return op if op is not None and op["finished_at"] is not None else None


async def wait_install(client: httpx.AsyncClient, timeout: float = 10) -> dict[str, Any]:
    """GET /server/install until the operation has finished; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        op = _finished(await client.get(INSTALL))
        if op is not None:
            return op
        assert time.monotonic() < deadline, "the install did not finish in time"
        await asyncio.sleep(0.01)


def wait_install_sync(
    client: TestClient, headers: dict[str, str], timeout: float = 30
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        op = _finished(client.get(INSTALL, headers=headers))
        if op is not None:
            return op
        assert time.monotonic() < deadline, "the install did not finish in time"
        time.sleep(0.02)
