"""The catalogue on disk: `<data>/backups/<id>.vcdbs.zst` and its `<id>.json` sidecar.

A backup exists once its sidecar does: the archive is written (temp name, fsync, rename) before
it, so a crash at any moment leaves either nothing listed or a complete backup. Temp files carry
the state-files marker and are removed at startup. A sidecar that cannot be read is set aside
as `<name>.corrupt-<ts>` and reported, never overwritten or silently dropped.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from pathlib import Path

import structlog
from pydantic import ValidationError

from vintagestory_api.kit.state_files import (
    TEMP_MARKER,
    CorruptStateFile,
    read_json,
    remove_stale_temp_files,
    set_aside,
    write_json,
)

from .archive import SUFFIX
from .schemas import Backup, DamagedSidecar
from .world import fsync_dir

logger = structlog.get_logger()

ID_PATTERN = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}$")


def temp_name(directory: Path, name: str) -> Path:
    return directory / f"{name}{TEMP_MARKER}{os.getpid()}-{threading.get_ident()}"


class BackupStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._backups: dict[str, Backup] = {}
        self.damaged: list[DamagedSidecar] = []

    def open(self) -> None:
        """Create the folder, drop a crashed writer's temp files, read every sidecar."""
        self.directory.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_files(self.directory)
        for sidecar in sorted(self.directory.glob("*.json")):
            self._load(sidecar)

    def _load(self, sidecar: Path) -> None:
        try:
            backup = Backup.model_validate(read_json(sidecar))
            if backup.id != sidecar.stem or not ID_PATTERN.match(backup.id):
                raise ValueError(f"its id '{backup.id[:40]}' does not match its file name")
            if not self.archive(backup.id).is_file():
                raise ValueError(f"its archive {backup.id}{SUFFIX} is missing")
        except (CorruptStateFile, OSError, ValueError, ValidationError) as exc:
            reason = str(exc).splitlines()[0][:300]
            moved, error = set_aside(sidecar)
            logger.error(
                "backup_sidecar_damaged", file=str(sidecar), reason=reason, set_aside_failed=error
            )
            self.damaged.append(
                DamagedSidecar(
                    file=sidecar.name, reason=reason, kept_as=moved.name if moved else None
                )
            )
            return
        self._backups[backup.id] = backup

    def archive(self, backup_id: str) -> Path:
        return self.directory / f"{backup_id}{SUFFIX}"

    def sidecar(self, backup_id: str) -> Path:
        return self.directory / f"{backup_id}.json"

    def all(self) -> list[Backup]:
        """Newest first."""
        return sorted(self._backups.values(), key=lambda b: b.created_at, reverse=True)

    def get(self, backup_id: str) -> Backup | None:
        return self._backups.get(backup_id)

    def add(self, backup: Backup) -> None:
        """Write the sidecar (last: the archive is already in place) and list the backup."""
        write_json(self.sidecar(backup.id), backup.model_dump(mode="json"), keep_backup=False)
        self._backups[backup.id] = backup

    def update(self, backup: Backup) -> None:
        self.add(backup)

    def remove(self, backup_id: str) -> None:
        """The sidecar first: from then on it is no backup, whatever happens to the archive."""
        self._backups.pop(backup_id, None)
        self.sidecar(backup_id).unlink(missing_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.archive(backup_id).unlink()
        fsync_dir(self.directory)
