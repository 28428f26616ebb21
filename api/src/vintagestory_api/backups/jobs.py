"""The built-in world backup job, scheduled by the world_backup_cron setting."""

from __future__ import annotations

from typing import Any

from vintagestory_api.scheduler.builtin import BuiltinJob
from vintagestory_api.scheduler.context import current_run

from .schemas import BackupTrigger
from .service import BackupService

# Each wait of a backup has its own timeout (settings); this only bounds a run that is stuck
# elsewhere (a disk that hangs), far beyond any of them.
BACKUP_JOB_TIMEOUT = 6 * 3600


async def world_backup(backups: BackupService) -> dict[str, Any]:
    """Take a verified backup, then prune; fails (raises) with the reason when it cannot."""
    run = current_run()
    trigger: BackupTrigger = (
        "schedule" if run is not None and run.trigger in ("schedule", "catch_up") else "manual"
    )
    return await backups.take_and_prune(trigger)


def builtin_jobs(backups: BackupService) -> list[BuiltinJob]:
    return [
        BuiltinJob(
            id="world_backup",
            func=world_backup,
            args=(backups,),
            setting="world_backup_cron",
            kind="cron",
            name="World backup",
            description="Backs up the world consistently (the running server's /genbackup or "
            "SQLite's online backup), verifies, compresses and prunes",
            timeout_seconds=BACKUP_JOB_TIMEOUT,
        )
    ]
