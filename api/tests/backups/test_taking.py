"""Backups of the fake's real WAL-mode world: running (genbackup) and stopped (online copy)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.gameserver import ADMIN, SERVER, wait_state
from vintagestory_api.config import Settings

from .helpers import API, BACKUPS, integrity, listed, rows, take, unpack, wait_run


def _run_a_while(game: TestClient) -> None:
    """Start and stop the fake once, so a world with rows exists."""
    assert game.post(f"{SERVER}/start", headers=ADMIN).status_code == 202
    wait_state(game, "running")
    assert game.post(f"{SERVER}/stop", headers=ADMIN).status_code == 202
    wait_state(game, "stopped")


def _world(settings: Settings) -> Path:
    return settings.game_data_dir / "Saves" / "default.vcdbs"


def test_a_backup_of_a_stopped_server_equals_the_world_and_downloads_in_ranges(
    game: TestClient, backup_settings: Settings, tmp_path: Path
) -> None:
    _run_a_while(game)
    run = take(game)
    assert run["outcome"] == "succeeded", run
    result = run["result"]
    assert result["method"] == "offline_copy"
    assert result["trigger"] == "manual"
    assert result["players_online"] is None
    [backup] = listed(game)
    assert backup["id"] == result["id"]
    totals = game.get(BACKUPS, headers=ADMIN).json()["data"]["totals"]
    assert totals["count"] == 1
    assert totals["archive_bytes"] == backup["archive_bytes"]

    download = game.get(f"{BACKUPS}/{backup['id']}/download", headers=ADMIN)
    assert download.status_code == 200
    body = download.content
    assert int(download.headers["content-length"]) == len(body) == backup["archive_bytes"]
    assert download.headers["x-checksum-sha256"] == hashlib.sha256(body).hexdigest()
    world = unpack(body, tmp_path / "copy.vcdbs")
    assert hashlib.sha256(world.read_bytes()).hexdigest() == backup["world_sha256"]
    assert rows(world) == rows(_world(backup_settings))

    part = game.get(f"{BACKUPS}/{backup['id']}/download", headers={**ADMIN, "Range": "bytes=10-19"})
    assert part.status_code == 206
    assert part.content == body[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(body)}"
    beyond = game.get(
        f"{BACKUPS}/{backup['id']}/download",
        headers={**ADMIN, "Range": f"bytes={len(body)}-"},
    )
    assert beyond.status_code == 416
    assert beyond.json()["error"]["code"] == "RANGE_NOT_SATISFIABLE"
    assert beyond.headers["content-range"] == f"bytes */{len(body)}"
    bad = game.get(f"{BACKUPS}/{backup['id']}/download", headers={**ADMIN, "Range": "pages=1"})
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "INVALID_RANGE"


@pytest.mark.parametrize("knobs", [{"write_interval_s": 0.5, "backup_s": 40}])
def test_a_backup_while_rows_are_written_holds_every_row_committed_before_genbackup(
    game: TestClient, backup_settings: Settings, tmp_path: Path
) -> None:
    assert game.post(f"{SERVER}/start", headers=ADMIN).status_code == 202
    wait_state(game, "running")
    response = game.post(BACKUPS, headers=ADMIN)
    assert response.status_code == 202
    run_id = response.json()["data"]["run_id"]
    # While it runs the server is held, and a second backup is refused.
    restart = game.post(f"{SERVER}/restart", headers=ADMIN)
    assert restart.status_code == 409
    assert restart.json()["error"] == {
        "code": "SERVER_BUSY",
        "message": "the game server is busy: a world backup holds it",
    }
    again = game.post(BACKUPS, headers=ADMIN)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "BACKUP_IN_PROGRESS"
    run = wait_run(game, "world_backup", run_id)
    assert run["outcome"] == "succeeded", run
    assert run["result"]["method"] == "genbackup"
    assert run["result"]["players_online"] == 0

    console = game.get(f"{SERVER}/console?limit=1000", headers=ADMIN).json()["data"]["entries"]
    [echo] = [e for e in console if e["text"].startswith("Handling Console Command /genbackup")]
    sent_at = datetime.fromisoformat(echo["time"]).timestamp()
    body = game.get(f"{BACKUPS}/{run['result']['id']}/download", headers=ADMIN).content
    world = unpack(body, tmp_path / "copy.vcdbs")
    assert integrity(world) == "ok"
    writes = rows(world)["fake_writes"]
    seqs = [row[0] for row in writes]
    # Contiguous from the first write: no committed row is missing in between.
    assert seqs == list(range(1, len(seqs) + 1))
    assert any(kind == "autosave" for _, kind, _ in writes)
    # The fake kept writing; once it is stopped, its world says which rows were committed
    # (stamped at commit) before /genbackup was even echoed: every one is in the backup.
    assert game.post(f"{SERVER}/stop", headers=ADMIN).status_code == 202
    wait_state(game, "stopped")
    live = rows(_world(backup_settings))["fake_writes"]
    before = {seq for seq, _, at in live if at < sent_at}
    assert len(before) >= 3
    assert before <= set(seqs)
    assert len(live) > len(writes)
    # The game's own copy was moved out of its Backups folder.
    assert list((backup_settings.game_data_dir / "Backups").iterdir()) == []


def _failed_without_a_backup(
    game: TestClient, settings: Settings, run: dict[str, Any], reason: str
) -> None:
    assert run["outcome"] == "failed", run
    assert run["error"]["type"] == "BackupFailed"
    assert reason in run["error"]["message"]
    assert listed(game) == []
    backups_dir = settings.data_dir / "backups"
    assert list(backups_dir.iterdir()) == []
    assert list((settings.game_data_dir / "Backups").iterdir()) == []


@pytest.mark.parametrize("knobs", [{"backup_mode": "hang"}])
@pytest.mark.parametrize("api_settings", [{"backup_genbackup_timeout_seconds": 1}])
def test_a_genbackup_that_never_completes_is_a_failed_run_and_no_backup(
    game: TestClient, backup_settings: Settings
) -> None:
    game.post(f"{SERVER}/start", headers=ADMIN)
    wait_state(game, "running")
    run = take(game)
    _failed_without_a_backup(game, backup_settings, run, "no 'Backup complete!' within 1 s")
    # The hold is released: the server can be stopped again.
    assert game.post(f"{SERVER}/stop", headers=ADMIN).status_code == 202


@pytest.mark.parametrize("knobs", [{"backup_mode": "crash"}])
@pytest.mark.parametrize("api_settings", [{"server_auto_restart": False}])
def test_a_server_crashing_mid_backup_is_a_failed_run_and_no_backup(
    game: TestClient, backup_settings: Settings
) -> None:
    game.post(f"{SERVER}/start", headers=ADMIN)
    wait_state(game, "running")
    run = take(game)
    _failed_without_a_backup(game, backup_settings, run, "it exited")
    wait_state(game, "crashed")


@pytest.mark.parametrize("api_settings", [{"world_backup_cron": "0 3 * * *"}])
def test_too_little_disk_space_is_refused_at_once_and_fails_a_scheduled_run(
    backup_settings: Settings, tmp_path: Path
) -> None:
    from vintagestory_api.app import create_app

    tight = backup_settings.model_copy(update={"min_free_disk_bytes": 2**62})
    with TestClient(create_app(tight)) as game:
        _run_a_while(game)
        refused = game.post(BACKUPS, headers=ADMIN)
        assert refused.status_code == 507
        error = refused.json()["error"]
        assert error["code"] == "INSUFFICIENT_STORAGE"
        assert "bytes are free" in error["message"]
        # The scheduled job (here run now through /jobs) fails with the same reason.
        started = game.post(f"{API}/jobs/world_backup/run", headers=ADMIN)
        assert started.status_code == 202
        run = wait_run(game, "world_backup", started.json()["data"]["run_id"])
        assert run["outcome"] == "failed"
        assert run["error"]["type"] == "InsufficientStorage"
        assert listed(game) == []
        job = game.get(f"{API}/jobs/world_backup", headers=ADMIN).json()["data"]
        assert job["cron"] == "0 3 * * *"
