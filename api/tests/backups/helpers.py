"""Helpers for the backup tests: runs, archives and world contents."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import zstandard
from fastapi.testclient import TestClient

from tests.support.gameserver import ADMIN

API = "/api/v1alpha1"
BACKUPS = f"{API}/backups"


def wait_run(client: TestClient, job_id: str, run_id: str, timeout: float = 20.0) -> dict[str, Any]:
    """Poll the job's runs until `run_id` has finished; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"{API}/jobs/{job_id}/runs", headers=ADMIN)
        assert response.status_code == 200, response.text
        for run in response.json()["data"]["runs"]:
            if run["run_id"] == run_id and run["outcome"] != "running":
                found: dict[str, Any] = run
                return found
        if time.monotonic() >= deadline:
            raise AssertionError(f"run {run_id} of {job_id} did not finish in {timeout} s")
        time.sleep(0.02)


def take(client: TestClient) -> dict[str, Any]:
    response = client.post(BACKUPS, headers=ADMIN)
    assert response.status_code == 202, response.text
    return wait_run(client, "world_backup", response.json()["data"]["run_id"])


def listed(client: TestClient) -> list[dict[str, Any]]:
    response = client.get(BACKUPS, headers=ADMIN)
    assert response.status_code == 200, response.text
    backups: list[dict[str, Any]] = response.json()["data"]["backups"]
    return backups


def unpack(data: bytes, target: Path) -> Path:
    target.write_bytes(zstandard.ZstdDecompressor().decompressobj().decompress(data))
    return target


def rows(world: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, in order: what "equals the world" compares."""
    conn = sqlite3.connect(f"file:{world}?mode=ro", uri=True)
    try:
        tables = [
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY 1")
        ]
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in tables}
    finally:
        conn.close()


def integrity(world: Path) -> str:
    conn = sqlite3.connect(f"file:{world}?mode=ro", uri=True)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()
