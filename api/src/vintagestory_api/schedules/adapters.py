"""The backup and install services as the schedule steps' ports want them: one awaitable
call that ends when the effect is done (the backup verified, the new version ready), and raises
when it failed."""

from __future__ import annotations

from vintagestory_api.backups.service import BackupService
from vintagestory_api.gameserver.errors import InstallFailure, VersionAlreadyCurrent
from vintagestory_api.gameserver.install import InstallService
from vintagestory_api.gameserver.schemas import InstallRequest
from vintagestory_api.mods.manager import ModManager

from .executor import StepFailed


class ScheduledBackups:
    def __init__(self, backups: BackupService) -> None:
        self._backups = backups

    async def take(self, trigger: str) -> str:
        # `trigger` names the schedule; the sidecar records the kind of trigger.
        backup = await self._backups.take("schedule")
        return f"backup {backup.id} verified ({backup.archive_bytes} bytes, {backup.method})"


class ScheduledInstalls:
    def __init__(self, installer: InstallService) -> None:
        self._installer = installer

    async def install(self, version: str) -> str:
        try:
            # A running server is stopped the graceful way, switched and started again (and
            # put back on the old version when the new one does not become ready).
            await self._installer.install(
                InstallRequest(version=version, restart=True), role="schedule"
            )
        except VersionAlreadyCurrent as exc:
            return exc.message
        op = await self._installer.finished()
        if op is None or op.stage != "done":
            error = op.error if op is not None else None
            raise InstallFailure(
                f"{error.code}: {error.message}" if error else "the install did not finish"
            )
        return f"{op.version} installed (was {op.from_version or 'none'})"


class ScheduledModUpdates:
    def __init__(self, mods: ModManager) -> None:
        self._mods = mods

    async def update_all(self) -> str:
        done = await self._mods.update_all()
        changed = [c.reason for c in done.changes] or ["no mod had a compatible update"]
        failed = [f"{f.modid}: {f.message}" for f in done.failed]
        if failed and not done.changes:
            raise StepFailed("; ".join(failed))
        return "; ".join(changed + [f"failed: {f}" for f in failed])
