"""Restore round trips, refusals, pins and damaged sidecars, with the fake's real world."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.gameserver import ADMIN, SERVER, wait_state
from tests.support.keys import MONITOR_KEY
from vintagestory_api.app import create_app
from vintagestory_api.config import Settings

from .helpers import BACKUPS, integrity, listed, rows, take, unpack, wait_run


def _world(settings: Settings) -> Path:
    return settings.game_data_dir / "Saves" / "default.vcdbs"


def _session(game: TestClient) -> None:
    """A start and a stop: the fake writes rows while it runs, and at shutdown."""
    assert game.post(f"{SERVER}/start", headers=ADMIN).status_code == 202
    wait_state(game, "running")
    assert game.post(f"{SERVER}/stop", headers=ADMIN).status_code == 202
    wait_state(game, "stopped")


def _restore(game: TestClient, backup_id: str, **body: object) -> dict[str, Any]:
    response = game.post(f"{BACKUPS}/{backup_id}/restore", headers=ADMIN, json=body or None)
    assert response.status_code == 202, response.text
    return wait_run(game, "world_restore", response.json()["data"]["run_id"])


def test_restore_round_trip_keeps_the_changed_world_and_refuses_a_flipped_byte(
    game: TestClient, backup_settings: Settings, tmp_path: Path
) -> None:
    _session(game)
    backed_up = rows(_world(backup_settings))
    backup = take(game)["result"]
    _session(game)  # the world changes
    changed = rows(_world(backup_settings))
    assert changed != backed_up

    run = _restore(game, backup["id"])
    assert run["outcome"] == "succeeded", run
    result = run["result"]
    assert isinstance(result, dict)
    assert rows(_world(backup_settings)) == backed_up
    assert integrity(_world(backup_settings)) == "ok"
    world_bytes = _world(backup_settings).read_bytes()
    assert hashlib.sha256(world_bytes).hexdigest() == backup["world_sha256"]
    # The world as it was before the restore is a backup of its own.
    pre = game.get(f"{BACKUPS}/{result['pre_restore_backup_id']}", headers=ADMIN).json()["data"]
    assert pre["trigger"] == "pre_restore"
    body = game.get(f"{BACKUPS}/{pre['id']}/download", headers=ADMIN).content
    assert rows(unpack(body, tmp_path / "pre.vcdbs")) == changed

    # One flipped byte in the archive: refused, the world untouched.
    archive = backup_settings.data_dir / "backups" / f"{pre['id']}.vcdbs.zst"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x01
    archive.write_bytes(bytes(data))
    refused = _restore(game, pre["id"])
    assert refused["outcome"] == "failed"
    error = refused["error"]
    assert isinstance(error, dict)
    assert error["type"] == "BackupDamaged"
    assert "sha256" in error["message"]
    assert _world(backup_settings).read_bytes() == world_bytes
    assert len(listed(game)) == 2


def test_restore_of_a_running_server_needs_stop_server_and_then_starts_it_again(
    game: TestClient, backup_settings: Settings
) -> None:
    _session(game)
    backup = take(game)["result"]
    game.post(f"{SERVER}/start", headers=ADMIN)
    wait_state(game, "running")
    refused = game.post(f"{BACKUPS}/{backup['id']}/restore", headers=ADMIN)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "SERVER_RUNNING"
    bad = game.post(f"{BACKUPS}/{backup['id']}/restore", headers=ADMIN, json={"stop": True})
    assert bad.status_code == 422
    assert "stop" in bad.json()["error"]["message"]
    run = _restore(game, backup["id"], stop_server=True)
    assert run["outcome"] == "succeeded", run
    assert run["result"] is not None
    assert run["result"]["stopped_server"] is True
    assert run["result"]["started_server"] is True
    wait_state(game, "running")


def test_pins_protect_from_deletion_and_the_monitor_may_only_read(
    game: TestClient, backup_settings: Settings
) -> None:
    _session(game)
    backup = take(game)["result"]
    url = f"{BACKUPS}/{backup['id']}"
    monitor = {"X-API-Key": MONITOR_KEY}
    assert game.get(BACKUPS, headers=monitor).status_code == 200
    assert game.get(f"{url}/download", headers=monitor).status_code == 403
    assert game.delete(url, headers=monitor).status_code == 403
    assert game.post(f"{url}/pin", headers=ADMIN).json()["data"]["pinned"] is True
    pinned = game.delete(url, headers=ADMIN)
    assert pinned.status_code == 409
    assert pinned.json()["error"]["code"] == "BACKUP_PINNED"
    assert game.post(f"{url}/unpin", headers=ADMIN).json()["data"]["pinned"] is False
    assert game.delete(url, headers=ADMIN).status_code == 204
    missing = game.get(url, headers=ADMIN)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "BACKUP_NOT_FOUND"
    assert list((backup_settings.data_dir / "backups").iterdir()) == []


@pytest.mark.parametrize("api_settings", [{"backup_max_age_hours": 1}])
def test_a_damaged_sidecar_is_set_aside_and_reported_and_health_wants_a_backup(
    game: TestClient, backup_settings: Settings
) -> None:
    health = game.get("/healthz").json()["data"]
    assert health["backups"] == {"status": "degraded", "reason": "no good backup exists yet"}
    _session(game)
    backup = take(game)["result"]
    assert game.get("/healthz").json()["data"]["backups"]["status"] == "ok"
    game.__exit__(None, None, None)
    sidecar = backup_settings.data_dir / "backups" / f"{backup['id']}.json"
    sidecar.write_text("{not json", encoding="utf-8")
    with TestClient(create_app(backup_settings)) as again:
        data = again.get(BACKUPS, headers=ADMIN).json()["data"]
        assert data["backups"] == []
        [damaged] = data["damaged"]
        assert damaged["file"] == sidecar.name
        assert damaged["kept_as"].startswith(f"{sidecar.name}.corrupt-")
        health = again.get("/healthz").json()["data"]
        assert health["status"] == "degraded"
        assert "damaged backup sidecars" in health["backups"]["reason"]
    assert (sidecar.parent / damaged["kept_as"]).exists()
