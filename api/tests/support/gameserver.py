"""Helpers for tests that run the API with the fake game server as its real child process.

The client is a TestClient or any httpx.Client on a served app."""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.support.fake_vs_client import fake_server_command
from tests.support.keys import ADMIN_KEY

SERVER = "/api/v1alpha1/server"
ADMIN = {"X-API-Key": ADMIN_KEY}

# Fast but not instant: a start takes about 0.3 s, long enough to watch it starting.
FAST_TIMINGS = {
    "server_start_timeout_seconds": 30,
    "server_stop_timeout_seconds": 30,
    "server_kill_timeout_seconds": 10,
    "server_restart_backoff_seconds": 1,
}


def fake_command() -> str:
    return shlex.join(fake_server_command())


def status(client: httpx.Client) -> dict[str, Any]:
    response = client.get(SERVER, headers=ADMIN)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def wait_until(
    client: httpx.Client,
    predicate: Callable[[dict[str, Any]], bool],
    *,
    timeout: float = 15.0,
    what: str = "the game server",
) -> dict[str, Any]:
    """Poll GET /server until `predicate(status)` holds; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        current = status(client)
        if predicate(current):
            return current
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out waiting for {what}; last status: {current}")
        time.sleep(0.02)


def wait_state(client: httpx.Client, state: str, timeout: float = 15.0) -> dict[str, Any]:
    return wait_until(client, lambda s: s["state"] == state, timeout=timeout, what=state)


def events(client: httpx.Client, limit: int = 100) -> list[dict[str, Any]]:
    response = client.get(f"{SERVER}/events", params={"limit": limit}, headers=ADMIN)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["data"]["events"]
    return found


def console_texts(client: httpx.Client, limit: int = 2000) -> list[str]:
    response = client.get(f"{SERVER}/console", params={"limit": limit}, headers=ADMIN)
    assert response.status_code == 200, response.text
    return [entry["text"] for entry in response.json()["data"]["entries"]]
