"""Restoring a backup: verify, stop if asked, keep the current world, swap, start again.

Nothing is touched before the archive's checksum, the unpacked world's checksum and SQLite's
quick_check all pass. The unpacked world waits next to the live one (same filesystem) and
replaces it with one rename, so `Saves/` never holds half a world. The old world's `-wal` and
`-shm` are moved away first: SQLite would otherwise replay the old world's log into the new one.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import structlog

from .archive import decompress, file_sha256
from .errors import BackupDamaged, RestoreFailed, ServerRunning
from .schemas import Backup
from .service import BackupService
from .store import temp_name
from .world import WAL_SUFFIXES, fsync_dir, integrity_problem

logger = structlog.get_logger()

RESTORE_HOLDER = "a world restore"
ROLE = "world_restore"


def _unpack_verified(backup: Backup, archive: Path, target: Path) -> None:
    actual = file_sha256(archive)
    if actual != backup.sha256:
        raise BackupDamaged(
            f"backup '{backup.id}': its archive's sha256 is {actual}, its sidecar says "
            f"{backup.sha256}; nothing was touched"
        )
    try:
        unpacked = decompress(archive, target)
    except Exception as exc:  # zstandard.ZstdError and friends: a damaged frame
        raise BackupDamaged(f"backup '{backup.id}': its archive cannot be unpacked: {exc}") from exc
    if unpacked != backup.world_sha256:
        raise BackupDamaged(
            f"backup '{backup.id}': the unpacked world's sha256 is {unpacked}, its sidecar says "
            f"{backup.world_sha256}; nothing was touched"
        )
    problem = integrity_problem(target)
    if problem is not None:
        raise BackupDamaged(f"backup '{backup.id}': the world fails quick_check: {problem}")


def _swap(unpacked: Path, world: Path) -> None:
    aside: list[Path] = []
    for suffix in WAL_SUFFIXES:
        companion = world.with_name(world.name + suffix)
        if companion.exists():
            moved = temp_name(world.parent, companion.name + ".old")
            os.replace(companion, moved)
            aside.append(moved)
    os.replace(unpacked, world)
    fsync_dir(world.parent)
    for path in aside:
        path.unlink(missing_ok=True)


def check_restorable(backups: BackupService, backup_id: str, stop_server: bool) -> Backup:
    """The refusals a restore request gets at once, before its run begins."""
    backup = backups.get(backup_id)
    backups.check_can_start()
    state = backups.gameserver.state
    if state == "running" and not stop_server:
        raise ServerRunning(
            'the game server is running; stop it first or send {"stop_server": true}'
        )
    return backup


async def restore(backups: BackupService, backup_id: str, *, stop_server: bool) -> dict[str, Any]:
    """The restore run's work; its result says what was done."""
    server = backups.gameserver
    async with backups.exclusive(f"restore of {backup_id}"):
        backup = backups.get(backup_id)
        archive = backups.store.archive(backup.id)
        world = backups.world
        world.parent.mkdir(parents=True, exist_ok=True)
        unpacked = temp_name(world.parent, f".{world.name}.restoring")
        try:
            await asyncio.to_thread(_unpack_verified, backup, archive, unpacked)
            async with server.lifecycle(RESTORE_HOLDER):
                stopped = False
                if server.state == "running":
                    if not stop_server:
                        raise ServerRunning(
                            "the game server is running; stop it first or send "
                            '{"stop_server": true}'
                        )
                    await server.stop_and_wait(ROLE, holder=RESTORE_HOLDER)
                    stopped = True
                if server.state in ("starting", "stopping"):
                    raise RestoreFailed(f"the game server is {server.state}; nothing was touched")
                pre_restore: str | None = None
                if world.exists():
                    try:
                        kept = await backups.take_held("pre_restore", hold=False)
                    except Exception as exc:
                        raise RestoreFailed(
                            f"the pre_restore backup failed: {exc}; the world was not touched"
                        ) from exc
                    pre_restore = kept.id
                await asyncio.to_thread(_swap, unpacked, world)
                logger.info("backup_restored", backup_id=backup.id, pre_restore=pre_restore)
                started = False
                if stopped:
                    started = await server.start(ROLE, holder=RESTORE_HOLDER)
        finally:
            unpacked.unlink(missing_ok=True)
    return {
        "backup_id": backup.id,
        "world": world.name,
        "pre_restore_backup_id": pre_restore,
        "stopped_server": stopped,
        "started_server": started,
    }
