"""Route dependencies of the backups domain."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from .schemas import Backup
from .service import BackupService


async def get_backups(request: Request) -> BackupService:
    service: BackupService = request.app.state.backups
    return service


BackupsDep = Annotated[BackupService, Depends(get_backups)]

BackupId = Annotated[str, Path(max_length=64, description="The backup's id")]


async def current_backup(backup_id: BackupId, backups: BackupsDep) -> Backup:
    return backups.get(backup_id)


CurrentBackup = Annotated[Backup, Depends(current_backup)]
