"""BackupService: the facade routes, jobs and other domains (installs, schedules) call.

`take(trigger)` is the one awaitable "take a backup and return it verified, or raise": it holds
the game server (`lifecycle`) for its whole duration, so no start, stop or restart interleaves.
One backup or restore at a time (409 BACKUP_IN_PROGRESS).
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

import structlog

from vintagestory_api.api_settings.service import ApiSettingsService
from vintagestory_api.gameserver.errors import LifecycleInProgress
from vintagestory_api.gameserver.service import GameServerService
from vintagestory_api.kit.schemas import ComponentHealth

from .errors import (
    BackupFailed,
    BackupInProgress,
    BackupNotFound,
    BackupPinned,
    InsufficientStorage,
    WorldNotFound,
)
from .retention import Candidate, Policy, plan_pruning
from .schemas import Backup, BackupList, BackupTotals, BackupTrigger, Pruned
from .store import BackupStore
from .taking import Timeouts, pack, removing, snapshot_offline, snapshot_running
from .world import world_path

logger = structlog.get_logger()

BACKUP_HOLDER = "a world backup"
# With a cron set and no threshold of its own, /healthz warns after this long without one.
DEFAULT_MAX_AGE = timedelta(hours=48)


def new_backup_id(now: datetime) -> str:
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


class BackupService:
    def __init__(
        self,
        directory: Path,
        game_data: Path,
        gameserver: GameServerService,
        settings: ApiSettingsService,
        *,
        timezone: tzinfo,
        min_free_bytes: int = 0,
    ) -> None:
        self.store = BackupStore(directory)
        self._game_data = game_data
        self._gameserver = gameserver
        self._settings = settings
        self._tz = timezone
        self._min_free = min_free_bytes
        self._lock = asyncio.Lock()
        self._busy_since: datetime | None = None
        self._busy_with = ""

    def open(self) -> None:
        self.store.open()

    @property
    def world(self) -> Path:
        return world_path(self._game_data)

    @property
    def gameserver(self) -> GameServerService:
        return self._gameserver

    # --- reading ---------------------------------------------------------------------------

    def list_backups(self) -> BackupList:
        backups = self.store.all()
        return BackupList(
            backups=backups,
            totals=BackupTotals(
                count=len(backups),
                archive_bytes=sum(b.archive_bytes for b in backups),
                world_bytes=sum(b.world_bytes for b in backups),
                pinned=sum(1 for b in backups if b.pinned),
                newest_at=backups[0].created_at if backups else None,
            ),
            damaged=list(self.store.damaged),
        )

    def get(self, backup_id: str) -> Backup:
        backup = self.store.get(backup_id)
        if backup is None:
            raise BackupNotFound(f"backup '{backup_id[:64]}' does not exist")
        return backup

    def archive(self, backup_id: str) -> Path:
        return self.store.archive(self.get(backup_id).id)

    def health(self) -> ComponentHealth:
        if self.store.damaged:
            names = ", ".join(d.file for d in self.store.damaged[:5])
            return ComponentHealth(
                status="degraded", reason=f"damaged backup sidecars were set aside: {names}"
            )
        limit = self._max_age()
        if limit is None:
            return ComponentHealth(status="ok")
        backups = self.store.all()
        if not backups:
            return ComponentHealth(status="degraded", reason="no good backup exists yet")
        age = datetime.now(UTC) - backups[0].created_at
        if age > limit:
            hours = age.total_seconds() / 3600
            return ComponentHealth(
                status="degraded",
                reason=f"the last good backup is {hours:.1f} h old (more than "
                f"{limit.total_seconds() / 3600:g} h)",
            )
        return ComponentHealth(status="ok")

    def _max_age(self) -> timedelta | None:
        current = self._settings.settings
        if current.backup_max_age_hours > 0:
            return timedelta(hours=current.backup_max_age_hours)
        return DEFAULT_MAX_AGE if current.world_backup_cron else None

    # --- changing --------------------------------------------------------------------------

    async def set_pinned(self, backup_id: str, pinned: bool) -> Backup:
        backup = self.get(backup_id)
        if backup.pinned == pinned:
            return backup
        changed = backup.model_copy(update={"pinned": pinned})
        await asyncio.to_thread(self.store.update, changed)
        logger.info("backup_pinned" if pinned else "backup_unpinned", backup_id=backup_id)
        return changed

    async def delete(self, backup_id: str) -> None:
        backup = self.get(backup_id)
        if backup.pinned:
            raise BackupPinned(f"backup '{backup.id}' is pinned; unpin it before deleting it")
        if self._lock.locked() and self._busy_with == f"restore of {backup.id}":
            raise BackupInProgress(f"backup '{backup.id}' is being restored")
        await asyncio.to_thread(self.store.remove, backup.id)
        logger.info("backup_deleted", backup_id=backup.id)

    # --- taking ----------------------------------------------------------------------------

    def check_can_start(self) -> None:
        """The refusals a caller gets before a run is even begun (the run checks again)."""
        self._not_busy()
        self._server_settled()
        self._check_space(self._world_size())

    def _not_busy(self) -> None:
        if self._lock.locked():
            since = self._busy_since.isoformat() if self._busy_since else "just now"
            raise BackupInProgress(f"a world {self._busy_with} is already running (since {since})")

    def _server_settled(self) -> None:
        held = self._gameserver.held_by
        if held is not None:
            raise LifecycleInProgress(f"the game server is busy: {held} holds it", holder=held)
        state = self._gameserver.state
        if state in ("starting", "stopping"):
            raise LifecycleInProgress(
                f"the game server is {state}; a backup needs it running or stopped"
            )

    def _world_size(self) -> int:
        world = self.world
        try:
            return world.stat().st_size
        except FileNotFoundError:
            raise WorldNotFound(f"there is no world to back up at {world}") from None

    def _check_space(self, world_size: int) -> None:
        factor = self._settings.settings.backup_free_space_factor
        if factor == 0:
            return
        directory = self.store.directory
        free = shutil.disk_usage(directory).free
        needed = factor * world_size + self._min_free
        if free < needed:
            raise InsufficientStorage(
                f"only {free} bytes are free on {directory}; a backup of this world needs "
                f"{needed} ({factor} x the world's {world_size} bytes plus the "
                f"{self._min_free} kept free, VS_MIN_FREE_DISK_BYTES)"
            )

    @asynccontextmanager
    async def exclusive(self, what: str) -> AsyncIterator[None]:
        """One backup or restore at a time; refused at once, never queued."""
        self._not_busy()
        async with self._lock:
            self._busy_since, self._busy_with = datetime.now(UTC), what
            try:
                yield
            finally:
                self._busy_since, self._busy_with = None, ""

    async def before_version_switch(self) -> str | None:
        """The installer's `pre_update` backup: its id, or None on a first install (no world
        yet, so nothing to lose); raises like `take`, and then nothing is switched."""
        try:
            backup = await self.take("pre_update")
        except WorldNotFound:
            return None
        return backup.id

    async def take(self, trigger: BackupTrigger = "manual") -> Backup:
        """Take a backup and return it once verified and stored; raises a clear ApiError
        (BACKUP_IN_PROGRESS, SERVER_BUSY, INSUFFICIENT_STORAGE, BACKUP_FAILED, ...)."""
        async with self.exclusive("backup"):
            return await self.take_held(trigger, hold=True)

    async def take_held(self, trigger: BackupTrigger, *, hold: bool) -> Backup:
        """A backup inside `exclusive()`; `hold`: take the game server's hold (a restore
        already has it)."""
        async with AsyncExitStack() as stack:
            if hold:
                self._server_settled()
                await stack.enter_async_context(self._gameserver.lifecycle(BACKUP_HOLDER))
            self._check_space(self._world_size())
            return await self._take(trigger)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _take(self, trigger: BackupTrigger) -> Backup:
        created = datetime.now(UTC)
        started = time.monotonic()
        backup_id = new_backup_id(created)
        log = logger.bind(backup_id=backup_id, trigger=trigger)
        server = self._gameserver
        running = server.state == "running"
        world = self.world
        snapshot: Path | None = None
        try:
            if running:
                current = self._settings.settings
                timeouts = Timeouts(
                    autosave=current.backup_autosave_timeout_seconds,
                    genbackup=current.backup_genbackup_timeout_seconds,
                )
                name = f"api-{backup_id}.vcdbs"
                snapshot = self._game_data / "Backups" / name
                players = server.players().count
                await snapshot_running(server, self._game_data / "Backups", name, timeouts)
            else:
                players = None
                snapshot = await snapshot_offline(world, self.store.directory, backup_id)
            packed = await asyncio.to_thread(pack, snapshot, self.store, backup_id)
            backup = Backup(
                id=backup_id,
                created_at=created,
                method="genbackup" if running else "offline_copy",
                trigger=trigger,
                game_version=server.status().version,
                world_name=world.name,
                world_bytes=packed.world_bytes,
                archive_bytes=packed.archive_bytes,
                sha256=packed.sha256,
                world_sha256=packed.world_sha256,
                players_online=players,
                duration_ms=round((time.monotonic() - started) * 1000),
            )
            await asyncio.to_thread(self.store.add, backup)
        except BaseException as exc:
            # Nothing half-made stays: no archive without a sidecar, no torn game backup.
            self.store.archive(backup_id).unlink(missing_ok=True)
            if isinstance(exc, OSError):
                log.error("backup_failed", error=str(exc))
                raise BackupFailed(f"the backup could not be written: {exc}") from exc
            log.warning("backup_failed", error=str(exc))
            raise
        finally:
            if snapshot is not None:
                removing(snapshot)()
        log.info(
            "backup_taken",
            method=backup.method,
            world_bytes=backup.world_bytes,
            archive_bytes=backup.archive_bytes,
            duration_ms=backup.duration_ms,
        )
        return backup

    async def prune(self) -> list[Pruned]:
        current = self._settings.settings
        policy = Policy(
            keep_last=current.backup_keep_last,
            daily_days=current.backup_keep_daily_days,
            weekly_weeks=current.backup_keep_weekly_weeks,
            max_total_bytes=current.backup_max_total_bytes,
        )
        candidates = [
            Candidate(b.id, b.created_at, b.archive_bytes, b.pinned) for b in self.store.all()
        ]
        pruned = [
            Pruned(id=backup_id, reason=reason)
            for backup_id, reason in plan_pruning(candidates, policy, datetime.now(UTC), self._tz)
        ]
        for item in pruned:
            await asyncio.to_thread(self.store.remove, item.id)
            logger.info("backup_pruned", backup_id=item.id, reason=item.reason)
        return pruned

    async def take_and_prune(self, trigger: BackupTrigger) -> dict[str, Any]:
        """The job's work: a backup, then pruning; the run's result."""
        backup = await self.take(trigger)
        pruned = await self.prune()
        return backup_result(backup, pruned)


def backup_result(backup: Backup, pruned: list[Pruned]) -> dict[str, Any]:
    result: dict[str, Any] = backup.model_dump(mode="json")
    result["pruned"] = [p.model_dump() for p in pruned]
    return result
