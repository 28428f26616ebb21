"""Backups as the API shows them: the sidecar of each, the list with totals, restore bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

BackupMethod = Literal["genbackup", "offline_copy"]
BackupTrigger = Literal["manual", "schedule", "pre_restore", "pre_update"]


class Backup(BaseModel):
    """One stored backup: what its JSON sidecar says (written last, after the archive)."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(examples=["20261129T030000Z-1a2b3c"])
    created_at: datetime
    method: BackupMethod = Field(
        description="genbackup: the running server's own online backup after /autosavenow; "
        "offline_copy: SQLite's online backup API on the stopped server's world"
    )
    trigger: BackupTrigger
    game_version: str | None = None
    world_name: str = Field(examples=["default.vcdbs"])
    world_bytes: int = Field(ge=0, description="Size of the world (uncompressed)")
    archive_bytes: int = Field(ge=0, description="Size of the stored zstd archive")
    sha256: str = Field(description="SHA-256 of the archive, as downloaded")
    world_sha256: str = Field(description="SHA-256 of the world inside the archive")
    compression: Literal["zstd"] = "zstd"
    players_online: int | None = Field(default=None, description="null when stopped")
    duration_ms: int = Field(ge=0)
    integrity: Literal["quick_check"] = Field(
        default="quick_check", description="The SQLite check the copy passed before it counted"
    )
    pinned: bool = Field(default=False, description="Pinned backups are never pruned")


class BackupTotals(BaseModel):
    count: int = Field(ge=0)
    archive_bytes: int = Field(ge=0)
    world_bytes: int = Field(ge=0)
    pinned: int = Field(ge=0)
    newest_at: datetime | None = None


class DamagedSidecar(BaseModel):
    file: str
    reason: str
    kept_as: str | None = Field(description="Where it was set aside; null when it could not be")


class BackupList(BaseModel):
    backups: list[Backup] = Field(description="Newest first")
    totals: BackupTotals
    damaged: list[DamagedSidecar] = Field(
        default_factory=list, description="Sidecars that could not be read, set aside"
    )


class Pruned(BaseModel):
    id: str
    reason: str


class RestoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    stop_server: bool = Field(
        default=False,
        description="Stop a running game server first and start it again after the restore; "
        "without it a running server is refused (409 SERVER_RUNNING)",
    )
