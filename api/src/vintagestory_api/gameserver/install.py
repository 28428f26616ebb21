"""Installing a game server version from the official downloads, and rolling back.

One operation at a time. An install goes downloading -> verifying (md5 from the versions API,
before anything is unpacked) -> extracting (into a staging directory next to the versions)
-> switching -> done, or failed at any stage with the current install untouched. Switching
holds the game server's lifecycle: a running server is stopped gracefully first (only when
asked to, with `restart`), the links are switched, it is started again, and if the new version
does not become ready the links are put back and the old version started again.

Which versions exist comes from a `ReleaseSource` (the versions domain, which sits above this
one; `app.py` hands it in).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import httpx
import structlog

from vintagestory_api.config import Settings
from vintagestory_api.errors import ApiError

from .download import DownloadLimits, download, rebase
from .errors import (
    ChecksumMismatch,
    DownloadFailed,
    InstallInProgress,
    NewVersionNotReady,
    NoPreviousVersion,
    ServerRunning,
    VersionAlreadyCurrent,
    VersionNotFound,
)
from .schemas import (
    ErrorInfo,
    IncompatibleMod,
    InstallOperation,
    InstallRequest,
    InstallStage,
    RollbackRequest,
)
from .service import GameServerService
from .states import PROCESS_STATES
from .unpack import unpack
from .versions_dir import Links, VersionsDir

logger = structlog.get_logger()

HOLDER = "a version switch"


@dataclass(frozen=True)
class Release:
    """One downloadable server version, as the versions API publishes it."""

    version: str
    url: str
    md5: str


class PreSwitch(Protocol):
    async def __call__(self) -> str | None:
        """Back up the world before a version switch: the backup's id, None when there is no
        world yet; raises (an ApiError) when it fails, and then nothing is switched."""


class ModCheck(Protocol):
    async def __call__(self, game_version: str) -> list[IncompatibleMod]:
        """The enabled mods `game_version` would not verifiably run."""


class ReleaseSource(Protocol):
    async def release(self, wanted: str) -> Release | None:
        """`wanted` is a version, `stable` or `unstable`; None when no such version exists."""


@dataclass(frozen=True)
class InstallLimits:
    download: DownloadLimits
    max_unpacked_bytes: int
    cdn_url: str | None = None


class InstallService:
    def __init__(
        self,
        gameserver: GameServerService,
        releases: ReleaseSource,
        client: httpx.AsyncClient,
        limits: InstallLimits,
        pre_switch: PreSwitch | None = None,
        mod_check: ModCheck | None = None,
    ) -> None:
        self._gameserver = gameserver
        # The mods domain, also above this one: what the new version would break.
        self._mod_check = mod_check
        # The backups domain sits above this one: app.py hands in its pre_update backup.
        self._pre_switch = pre_switch
        self._releases = releases
        self._client = client
        self._limits = limits
        self._dir: VersionsDir = gameserver.launch_config.versions
        self._op: InstallOperation | None = None
        self._task: asyncio.Task[None] | None = None
        self._claimed = False

    def operation(self) -> InstallOperation | None:
        """The operation under way, or the last one since the API started."""
        return self._op.model_copy() if self._op is not None else None

    async def finished(self) -> InstallOperation | None:
        """Once the operation under way (if any) has ended: the last operation."""
        task = self._task
        if task is not None:
            await asyncio.wait({task})
        return self.operation()

    async def start(self) -> None:
        """At startup: remove what an interrupted install left, and mend `current_version`."""
        await asyncio.to_thread(self._tidy)

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    # --- requests --------------------------------------------------------------------------

    async def install(self, request: InstallRequest, role: str) -> InstallOperation:
        with self._claim():
            release = await self._releases.release(request.version)
            if release is None:
                raise VersionNotFound(
                    f"version: {request.version} is in neither the stable nor the "
                    "unstable version list"
                )
            current = await asyncio.to_thread(self._dir.current)
            if release.version == current:
                raise VersionAlreadyCurrent(f"{release.version} is already the current version")
            if not request.dry_run:
                self._refuse_if_running(request.restart)
            await self._gameserver.check_runtime(release.version)
            op = InstallOperation.begun(
                "install", request.version, release.version, current, request.restart, role
            )
            if self._mod_check is not None:
                op.incompatible_mods = await self._mod_check(release.version)
            if request.dry_run:
                # What it would do, answered at once; the last real operation stays the one
                # GET /server/install shows.
                op.dry_run, op.stage, op.finished_at = True, "done", datetime.now(UTC)
                return op
            if op.incompatible_mods:
                logger.warning(
                    "game_server_install_mods_incompatible",
                    version=release.version,
                    mods=[m.modid for m in op.incompatible_mods],
                )
            self._begin(op, self._install(op, release, role))
        return op.model_copy()

    async def rollback(self, request: RollbackRequest, role: str) -> InstallOperation:
        with self._claim():
            links = await asyncio.to_thread(self._dir.links)
            if links.previous is None:
                raise NoPreviousVersion("there is no previous version to roll back to")
            self._refuse_if_running(request.restart)
            await self._gameserver.check_runtime(links.previous)
            op = InstallOperation.begun(
                "rollback", "previous", links.previous, links.current, request.restart, role
            )
            self._begin(op, self._rollback(op, role))
        return op.model_copy()

    @contextlib.contextmanager
    def _claim(self) -> Iterator[None]:
        # Held across the checks' awaits, so two requests cannot both pass them.
        if self._claimed:
            raise InstallInProgress("another install or rollback request is being checked")
        op = self._op
        if op is not None and op.finished_at is None:
            raise InstallInProgress(
                f"{'an install' if op.kind == 'install' else 'a rollback'} of {op.version} is in "
                f"progress ({op.stage}); wait for it to end (GET /server/install)"
            )
        self._claimed = True
        try:
            yield
        finally:
            self._claimed = False

    def _refuse_if_running(self, restart: bool) -> None:
        state = self._gameserver.state
        if state in PROCESS_STATES and not restart:
            raise ServerRunning(
                f'the game server is {state}; stop it first, or send "restart": true to have '
                "it stopped, switched and started again"
            )

    def _begin(self, op: InstallOperation, work: Awaitable[None]) -> None:
        self._op = op
        logger.info("game_server_install_started", kind=op.kind, version=op.version, role=op.role)
        # A fresh context: the operation outlives the request and must not log its id.
        self._task = asyncio.get_running_loop().create_task(
            self._run(op, work), context=contextvars.Context()
        )

    async def _run(self, op: InstallOperation, work: Awaitable[None]) -> None:
        try:
            await work
            op.stage = "done"
            logger.info("game_server_install_done", kind=op.kind, version=op.version)
        except ApiError as exc:
            self._fail(op, exc.code, exc.message)
        except asyncio.CancelledError:
            self._fail(op, "INSTALL_FAILED", "the API shut down while it ran")
            raise
        except Exception as exc:
            logger.exception("game_server_install_crashed", version=op.version)
            self._fail(op, "INSTALL_FAILED", f"{type(exc).__name__}: {exc}")
        finally:
            try:
                # Only versions that are current or previous are kept (and nothing half-done).
                await asyncio.to_thread(self._dir.prune)
            except OSError as exc:
                logger.warning("game_server_versions_prune_failed", error=str(exc))
            finally:
                # Last: the next operation may begin once this one is finished.
                op.finished_at = datetime.now(UTC)

    def _fail(self, op: InstallOperation, code: str, message: str) -> None:
        op.error = ErrorInfo(code=code, message=message)
        logger.warning(
            "game_server_install_failed",
            stage=op.stage,
            version=op.version,
            code=code,
            error=message,
        )
        op.stage = "failed"

    # --- the work --------------------------------------------------------------------------

    async def _install(self, op: InstallOperation, release: Release, role: str) -> None:
        archive = self._dir.download_path(release.version)
        staging = None
        try:
            url = rebase(release.url, self._limits.cdn_url)
            if not url:
                raise DownloadFailed(f"the versions API publishes no URL for {release.version}")
            md5 = await download(
                self._client, url, archive, self._limits.download, self._progress(op)
            )
            self._stage(op, "verifying")
            if md5.lower() != release.md5.strip().lower():
                raise ChecksumMismatch(
                    f"the download's md5 is {md5}; the versions API publishes {release.md5} for "
                    f"{release.version}: the file is damaged or not the published one"
                )
            self._stage(op, "extracting")
            staging = await asyncio.to_thread(self._dir.new_staging, release.version)
            await asyncio.to_thread(
                unpack, archive, staging, max_bytes=self._limits.max_unpacked_bytes
            )
            await self._back_up(op)

            def change() -> Links:
                self._dir.add(staging, release.version)
                return self._dir.switch(release.version)

            await self._switch(op, role, change)
        finally:
            await asyncio.to_thread(self._discard, archive, staging)

    async def _rollback(self, op: InstallOperation, role: str) -> None:
        await self._back_up(op)
        await self._switch(op, role, lambda: self._dir.switch(op.version))

    async def _back_up(self, op: InstallOperation) -> None:
        # After the download and checks (a failed download costs no backup), before anything
        # changes: a world the new version converts can always be had back as it was.
        if self._pre_switch is not None:
            self._stage(op, "backing_up")
            op.backup_id = await self._pre_switch()
        self._stage(op, "switching")

    async def _switch(self, op: InstallOperation, role: str, change: Callable[[], Links]) -> None:
        gameserver = self._gameserver
        async with gameserver.lifecycle(HOLDER):
            running = gameserver.state in PROCESS_STATES
            if running and not op.restart:
                raise ServerRunning(
                    "the game server was started while the install ran; install again with "
                    '"restart": true, or stop it first'
                )
            if running:
                await gameserver.stop_and_wait(role, holder=HOLDER)
            before = await asyncio.to_thread(change)
            gameserver.version_switched(f"{op.version} (was {before.current or 'none'})")
            if not running:
                return
            problem = await gameserver.start_held(HOLDER, role)
            if problem is not None:
                await self._put_back(op, before, problem, role)

    async def _put_back(self, op: InstallOperation, before: Links, problem: str, role: str) -> None:
        gameserver = self._gameserver
        await asyncio.to_thread(self._dir.point, before)
        old = before.current or before.file_version or "the install before it"
        gameserver.version_switched(f"{old} again: {op.version} did not become ready")
        op.rolled_back = True
        again = await gameserver.start_held(HOLDER, role)
        outcome = (
            "which is running again" if again is None else f"which did not start either: {again}"
        )
        raise NewVersionNotReady(
            f"{op.version} did not become ready: {problem}; rolled back to {old}, {outcome}"
        )

    def _stage(self, op: InstallOperation, stage: InstallStage) -> None:
        op.stage = stage
        logger.info("game_server_install_stage", stage=stage, version=op.version)

    @staticmethod
    def _progress(op: InstallOperation) -> Callable[[int, int | None], None]:
        def progress(done: int, total: int | None) -> None:
            op.bytes_done, op.bytes_total = done, total
            op.percent = round(done * 100 / total, 1) if total else None

        return progress

    def _discard(self, archive: Path, staging: Path | None) -> None:
        self._dir.remove(archive)
        if staging is not None:
            self._dir.remove(staging)

    def _tidy(self) -> None:
        self._dir.sync_version_file()
        self._dir.prune()


def build_installer(
    settings: Settings,
    gameserver: GameServerService,
    client: httpx.AsyncClient,
    releases: ReleaseSource,
    pre_switch: PreSwitch | None = None,
    mod_check: ModCheck | None = None,
) -> InstallService:
    return InstallService(
        gameserver,
        releases,
        client,
        InstallLimits(
            download=DownloadLimits(
                max_bytes=settings.install_max_download_bytes,
                deadline=settings.install_download_timeout,
            ),
            max_unpacked_bytes=settings.install_max_unpacked_bytes,
            cdn_url=str(settings.cdn_url) if settings.cdn_url is not None else None,
        ),
        pre_switch,
        mod_check,
    )
