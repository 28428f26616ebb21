"""Errors of the backups domain, under one base class."""

from __future__ import annotations

from vintagestory_api.errors import ApiError, Conflict, ExpectedFailure, NotFound


class BackupError(ApiError):
    """Base of the backups domain's errors."""


class BackupInProgress(BackupError, Conflict):
    code = "BACKUP_IN_PROGRESS"
    example = "a world backup is already running (started 2026-11-29T03:00:00+00:00)"


class BackupNotFound(BackupError, NotFound):
    code = "BACKUP_NOT_FOUND"
    example = "backup '20261129T030000Z-1a2b3c' does not exist"


class BackupPinned(BackupError, Conflict):
    code = "BACKUP_PINNED"
    example = "backup '20261129T030000Z-1a2b3c' is pinned; unpin it before deleting it"


class InsufficientStorage(BackupError):
    status_code = 507
    code = "INSUFFICIENT_STORAGE"
    example = (
        "only 1048576 bytes are free on /data/backups; a backup of this world needs 2097152 "
        "(2 x the world's 524288 bytes plus the 1048576 kept free)"
    )


class ServerRunning(BackupError, Conflict):
    code = "SERVER_RUNNING"
    example = 'the game server is running; stop it first or send {"stop_server": true}'


class WorldNotFound(BackupError, Conflict):
    code = "WORLD_NOT_FOUND"
    example = "there is no world to back up at /data/serverdata/Saves/default.vcdbs"


class BackupDamaged(BackupError, Conflict, ExpectedFailure):
    """An archive whose checksum or world no longer matches what was recorded."""

    code = "BACKUP_DAMAGED"
    example = "backup '20261129T030000Z-1a2b3c': its archive's sha256 is 3f…, its sidecar says 9c…"


class BackupFailed(BackupError, ExpectedFailure):
    """A backup that could not be completed; nothing was stored for it."""

    status_code = 500
    code = "BACKUP_FAILED"
    example = "/genbackup did not print 'Backup complete!' within 1800 s"


class RestoreFailed(BackupError, ExpectedFailure):
    status_code = 500
    code = "RESTORE_FAILED"
    example = "the pre_restore backup failed: ...; the world was not touched"


class RangeNotSatisfiable(BackupError):
    status_code = 416
    code = "RANGE_NOT_SATISFIABLE"
    example = "header.range: bytes=9000- starts past the end of the 4096-byte archive"

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.headers = {"Content-Range": f"bytes */{size}"}


class InvalidRange(BackupError):
    status_code = 400
    code = "INVALID_RANGE"
    example = "header.range: 'bytes=a-b' is not a byte range (bytes=START-END)"
