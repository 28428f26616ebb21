"""`/backups`: take, list, download, pin, delete and restore world backups."""

from __future__ import annotations

import base64
import functools
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Response, status
from fastapi.responses import FileResponse

from vintagestory_api.auth.deps import AdminDep, RoleDep
from vintagestory_api.auth.errors import Forbidden
from vintagestory_api.errors import error_responses
from vintagestory_api.gameserver.errors import LifecycleInProgress
from vintagestory_api.kit.envelope import ApiResponse, ok
from vintagestory_api.scheduler.deps import SchedulerDep
from vintagestory_api.scheduler.errors import JobAlreadyRunning, SchedulerNotRunning
from vintagestory_api.scheduler.schemas import JobRun

from .deps import BackupsDep, CurrentBackup
from .errors import (
    BackupInProgress,
    BackupNotFound,
    BackupPinned,
    InsufficientStorage,
    InvalidRange,
    RangeNotSatisfiable,
    ServerRunning,
    WorldNotFound,
)
from .jobs import BACKUP_JOB_TIMEOUT, world_backup
from .restore import check_restorable, restore
from .schemas import Backup, BackupList, RestoreRequest

router = APIRouter(prefix="/backups", tags=["backups"])

_START_ERRORS = (
    Forbidden,
    BackupInProgress,
    LifecycleInProgress,
    InsufficientStorage,
    WorldNotFound,
    JobAlreadyRunning,
    SchedulerNotRunning,
)


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Take a backup now: 202 with the world_backup run (GET /jobs/world_backup/runs)",
    responses=error_responses(*_START_ERRORS),
)
async def take_backup(
    backups: BackupsDep, scheduler: SchedulerDep, _: AdminDep
) -> ApiResponse[JobRun]:
    backups.check_can_start()
    call = functools.partial(world_backup, backups)
    return ok(scheduler.run_call("world_backup", call, timeout_seconds=BACKUP_JOB_TIMEOUT))


@router.get("", summary="Every stored backup, newest first, with totals")
async def list_backups(backups: BackupsDep, _: RoleDep) -> ApiResponse[BackupList]:
    return ok(backups.list_backups())


@router.get("/{backup_id}", summary="One backup", responses=error_responses(BackupNotFound))
async def get_backup(backup: CurrentBackup, _: RoleDep) -> ApiResponse[Backup]:
    return ok(backup)


def _check_range(header: str, size: int) -> None:
    """Refuse, with the envelope, what Starlette would answer in plain text."""
    units, _, spec = header.partition("=")
    if units.strip() != "bytes" or not spec.strip():
        raise InvalidRange(f"header.range: '{header[:60]}' is not a byte range (bytes=START-END)")
    for part in spec.split(","):
        start, dash, end = part.strip().partition("-")
        if (
            not dash
            or not (start.isdigit() or end.isdigit())
            or ((start and not start.isdigit()) or (end and not end.isdigit()))
        ):
            raise InvalidRange(f"header.range: '{part.strip()[:40]}' is not START-END")
        if start and end and int(start) > int(end):
            raise InvalidRange(f"header.range: '{part.strip()[:40]}' ends before it starts")
        if start and int(start) >= size:
            raise RangeNotSatisfiable(
                f"header.range: {part.strip()[:40]} starts past the end of the {size}-byte archive",
                size,
            )
        if not start and int(end) == 0:
            raise RangeNotSatisfiable("header.range: a suffix of 0 bytes is empty", size)


_DOWNLOAD: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"application/zstd": {"schema": {"type": "string", "format": "binary"}}},
        "description": "The zstd archive of the world (unpack with `zstd -d`), with "
        "Content-Length and X-Checksum-Sha256",
    },
    206: {"description": "The requested byte range (Range: bytes=START-END)"},
}


@router.get(
    "/{backup_id}/download",
    summary="Download the archive, streamed; resumable with Range",
    response_class=FileResponse,
    responses={
        **_DOWNLOAD,
        **error_responses(Forbidden, BackupNotFound, InvalidRange, RangeNotSatisfiable),
    },
)
async def download_backup(
    backup: CurrentBackup,
    backups: BackupsDep,
    _: AdminDep,
    range_header: Annotated[str | None, Header(alias="range", max_length=200)] = None,
) -> FileResponse:
    if range_header is not None:
        _check_range(range_header, backup.archive_bytes)
    digest = bytes.fromhex(backup.sha256)
    return FileResponse(
        backups.archive(backup.id),
        media_type="application/zstd",
        filename=f"{backup.id}.vcdbs.zst",
        headers={
            "X-Checksum-Sha256": backup.sha256,
            # RFC 9530's field, for clients that check it on their own.
            "Repr-Digest": f"sha-256=:{base64.b64encode(digest).decode()}:",
        },
    )


@router.delete(
    "/{backup_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a backup (a pinned one must be unpinned first)",
    responses=error_responses(Forbidden, BackupNotFound, BackupPinned, BackupInProgress),
)
async def delete_backup(backup: CurrentBackup, backups: BackupsDep, _: AdminDep) -> Response:
    await backups.delete(backup.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{backup_id}/pin",
    summary="Pin a backup: it is never pruned",
    responses=error_responses(Forbidden, BackupNotFound),
)
async def pin_backup(
    backup: CurrentBackup, backups: BackupsDep, _: AdminDep
) -> ApiResponse[Backup]:
    return ok(await backups.set_pinned(backup.id, True))


@router.post(
    "/{backup_id}/unpin",
    summary="Unpin a backup: retention may prune it again",
    responses=error_responses(Forbidden, BackupNotFound),
)
async def unpin_backup(
    backup: CurrentBackup, backups: BackupsDep, _: AdminDep
) -> ApiResponse[Backup]:
    return ok(await backups.set_pinned(backup.id, False))


@router.post(
    "/{backup_id}/restore",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Restore a backup: 202 with the world_restore run (GET /jobs/world_restore/runs)",
    description="Verifies the archive and the world before touching anything, keeps the "
    "current world as a `pre_restore` backup, then swaps the world in with one rename. The "
    'game server must be stopped, or the body says `{"stop_server": true}` (stop, restore, '
    "start again).",
    responses=error_responses(*_START_ERRORS, BackupNotFound, ServerRunning),
)
async def restore_backup(
    backup: CurrentBackup,
    backups: BackupsDep,
    scheduler: SchedulerDep,
    _: AdminDep,
    body: Annotated[RestoreRequest | None, Body()] = None,
) -> ApiResponse[JobRun]:
    stop_server = body.stop_server if body is not None else False
    check_restorable(backups, backup.id, stop_server)
    call = functools.partial(restore, backups, backup.id, stop_server=stop_server)
    return ok(scheduler.run_call("world_restore", call, timeout_seconds=BACKUP_JOB_TIMEOUT))
