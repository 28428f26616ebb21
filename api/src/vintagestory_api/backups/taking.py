"""Taking one backup: a consistent snapshot of the world, checked, compressed and stored.

Running server: `/autosavenow`, wait for `Offthread save of savegame done.` (the data is then
committed; "Autosave completed" is printed even when nothing was saved), `/genbackup <ours>`,
wait for `Backup complete!` and for the file to be complete and unlocked. Stopped server:
SQLite's online backup API on the world, never a file copy (a `-wal` left by a crash holds
committed data a copy would miss). Either way the copy must pass `PRAGMA quick_check` before it
is compressed, and nothing is listed until its sidecar is written, last.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import structlog

from vintagestory_api.gameserver.service import GameServerService

from .archive import Packed, compress
from .errors import BackupFailed
from .store import BackupStore, temp_name
from .world import fsync_dir, integrity_problem, online_copy, wait_complete

logger = structlog.get_logger()

SAVE_DONE = "Offthread save of savegame done."
BACKUP_DONE = "Backup complete!"
BACKUP_BUSY = "Can't run backup. A backup is already in progress"
# How often a wait for a console line also looks whether the server is still running.
STATE_POLL = 0.25


class _Lines(Protocol):
    """A console subscription, as the game server facade hands it out."""

    async def get(self) -> tuple[list[Any], int]: ...


@dataclass(frozen=True)
class Timeouts:
    autosave: float
    genbackup: float


async def _wait_line(
    gameserver: GameServerService,
    subscription: _Lines,
    wanted: str,
    *,
    timeout: float,  # noqa: ASYNC109  # each wait's own limit, a setting
    what: str,
    refuse: str | None = None,
) -> None:
    """Until a console line containing `wanted`; BackupFailed on timeout or a server exit."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BackupFailed(f"{what}: no '{wanted}' within {timeout:g} s")
        try:
            async with asyncio.timeout(min(remaining, STATE_POLL)):
                entries, _ = await subscription.get()
        except TimeoutError:
            entries = []
        for entry in entries:
            if refuse is not None and refuse in entry.text:
                raise BackupFailed(f"{what}: the game server answered '{entry.text}'")
            if wanted in entry.text:
                return
        if gameserver.state != "running":
            raise BackupFailed(f"{what}: the game server is {gameserver.state} (it exited)")


async def snapshot_running(
    gameserver: GameServerService, game_backups: Path, name: str, timeouts: Timeouts
) -> Path:
    """The game's own backup of its committed world, as a complete file in `game_backups`."""
    target = game_backups / name
    target.unlink(missing_ok=True)
    subscription = gameserver.subscribe()
    try:
        await gameserver.post_command("/autosavenow")
        await _wait_line(
            gameserver,
            subscription,
            SAVE_DONE,
            timeout=timeouts.autosave,
            what="/autosavenow",
        )
        started = time.monotonic()
        await gameserver.post_command(f"/genbackup {name}")
        await _wait_line(
            gameserver,
            subscription,
            BACKUP_DONE,
            timeout=timeouts.genbackup,
            what="/genbackup",
            refuse=BACKUP_BUSY,
        )
        left = max(1.0, timeouts.genbackup - (time.monotonic() - started))
        complete = await asyncio.to_thread(wait_complete, target, time.monotonic() + left)
        if not complete:
            raise BackupFailed(f"/genbackup said it was done but {target} never was complete")
    finally:
        gameserver.unsubscribe(subscription)
    return target


async def snapshot_offline(world: Path, directory: Path, backup_id: str) -> Path:
    target = temp_name(directory, f"{backup_id}.vcdbs")
    await asyncio.to_thread(online_copy, world, target)
    return target


def pack(snapshot: Path, store: BackupStore, backup_id: str) -> Packed:
    """Check the copy, compress it under a temp name, then rename it into place (blocking)."""
    problem = integrity_problem(snapshot)
    if problem is not None:
        raise BackupFailed(f"the copy of the world failed SQLite's quick_check: {problem}")
    partial = temp_name(store.directory, f"{backup_id}.vcdbs.zst")
    try:
        packed = compress(snapshot, partial)
        os.replace(partial, store.archive(backup_id))
    finally:
        partial.unlink(missing_ok=True)
    fsync_dir(store.directory)
    return packed


def removing(*paths: Path) -> Callable[[], None]:
    def remove() -> None:
        for path in paths:
            path.unlink(missing_ok=True)

    return remove
