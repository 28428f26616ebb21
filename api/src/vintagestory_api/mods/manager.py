"""Changing the installed mods: install, update, enable, disable, remove, roll back, upload.

The facade routes and other domains call (a schedule step `update_all()`, the game server
install `incompatible_with()`). One change at a time: a second is refused with
MOD_OPERATION_IN_PROGRESS rather than queued, so nobody waits behind a slow download without
knowing. Everything that can fail (lookup, download, archive checks) happens before `Mods/` is
touched; the files then move under the game server's lifecycle hold, so no start or stop reads
the folder half-way. A change while the game server runs is noted as a restart reason.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import BinaryIO

import httpx
import structlog

from vintagestory_api.config import Settings
from vintagestory_api.errors import ApiError
from vintagestory_api.gameserver.service import GameServerService
from vintagestory_api.kit.http import FetchPolicy, JsonFetcher
from vintagestory_api.kit.version_numbers import is_newer

from .compatibility import incompatible_mods
from .dependencies import dependents
from .errors import (
    ModNotInstalled,
    ModOperationInProgress,
    ModRequiredBy,
    ModWriteFailed,
    NoPreviousVersion,
)
from .planning import Planner
from .releases import ModReference
from .schemas import (
    KeptVersion,
    MissingDependency,
    ModChange,
    ModCompatibility,
    ModCompatibilityList,
    ModDetail,
    ModFailure,
    ModInstall,
    ModOperation,
)
from .service import ModsService
from .sources import ModSource, Prepared
from .store import Entry, ModPaths, ModStore

logger = structlog.get_logger()


class ModManager:
    def __init__(
        self,
        *,
        source: ModSource,
        store: ModStore,
        catalog: ModsService,
        gameserver: GameServerService,
        concurrency: int = 4,
    ) -> None:
        self._source = source
        self._store = store
        self._planner = Planner(source, store)
        self._catalog = catalog
        self._gameserver = gameserver
        self._concurrency = concurrency
        self._lock = asyncio.Lock()
        self._running: str | None = None

    async def start(self) -> None:
        await asyncio.to_thread(self._store.clean_staging)

    # --- reading ---------------------------------------------------------------------------

    async def detail(self, modid: str) -> ModDetail:
        listing = await self._catalog.mod_list()
        found = [m for m in listing.mods if (m.modid or "").lower() == modid.lower()]
        if not found:
            raise ModNotInstalled(f"no mod with modid {modid!r} is installed")
        kept = await asyncio.to_thread(self._store.kept, modid)
        return ModDetail(
            mod=found[0],
            previous=[
                KeptVersion(
                    version=k.mod.version if k.mod else None, file=k.name, kept_at=k.kept_at
                )
                for k in kept
            ],
            required_by=dependents(listing.mods, modid),
        )

    async def incompatible_with(self, game_version: str) -> list[ModCompatibility]:
        """Every enabled mod that is not verified for `game_version`, with the release to
        update to when the database has one (what a game server update would break)."""
        entries = [e for e in await self._entries() if e.enabled and e.mod.modid]
        return await incompatible_mods(
            self._source, entries, game_version, concurrency=self._concurrency
        )

    async def compatibility_report(self, game_version: str) -> ModCompatibilityList:
        return ModCompatibilityList(
            game_version=game_version, mods=await self.incompatible_with(game_version)
        )

    # --- changing --------------------------------------------------------------------------

    async def install(self, request: ModInstall) -> ModOperation:
        async with self._exclusive(f"install {request.mod}"):
            game_version = self._gameserver.installed_version()
            ref = self._source.reference(request.mod)
            async with self._planner.plan() as plan:
                choice = await self._source.choose(
                    ref, request.version, game_version, explicit=True, force=request.force
                )
                plan.append(await self._planner.fetch(choice))
                missing = await self._planner.missing(plan)
                if request.with_dependencies:
                    missing = await self._planner.add_dependencies(plan, missing, game_version)
                changes = await self._place(plan, keep_place=False)
            return await self._result(changes, missing)

    async def upload(self, source: BinaryIO, filename: str) -> ModOperation:
        """A mod archive that is not in the database, with the same checks as a download."""
        async with self._exclusive(f"upload {filename[:100]}"):
            staged = self._store.new_staging_file()
            plan: list[Prepared] = []
            try:
                plan.append(await self._source.take_upload(source, filename, staged))
                missing = await self._planner.missing(plan)
                changes = await self._place(plan, keep_place=False)
            finally:
                await asyncio.to_thread(staged.unlink, missing_ok=True)
            return await self._result(changes, missing)

    async def update(self, modid: str) -> ModOperation:
        """The newest release for the installed game version, when it is newer."""
        async with self._exclusive(f"update {modid}"):
            current = await self._current(modid)
            game_version = self._gameserver.installed_version()
            choice = await self._source.choose(
                ModReference(key=modid), None, game_version, explicit=False
            )
            version = current.mod.version
            if not is_newer(choice.release.version, version):
                unchanged = ModChange(
                    modid=modid,
                    action="unchanged",
                    from_version=version,
                    to_version=version,
                    file=current.path.name,
                    compatibility=choice.compatibility,
                    reason=f"{modid} {version} is the newest release for this game version",
                )
                return await self._result([unchanged], [], note=False)
            async with self._planner.plan() as plan:
                plan.append(await self._planner.fetch(choice))
                missing = await self._planner.missing(plan)
                changes = await self._place(plan, keep_place=True)
            return await self._result(changes, missing)

    async def update_all(self) -> ModOperation:
        """Apply every update the last mod check found for the installed game version; one
        that fails is listed in `failed` and the others go on."""
        async with self._exclusive("update all"):
            listing = await self._catalog.mod_list()
            wanted = [m for m in listing.mods if m.modid and m.moddb and m.moddb.update_available]
            changes: list[ModChange] = []
            failed: list[ModFailure] = []
            missing: list[MissingDependency] = []
            for mod in wanted:
                assert mod.modid is not None
                assert mod.moddb is not None
                try:
                    async with self._planner.plan() as plan:
                        choice = await self._source.choose(
                            ModReference(key=mod.modid),
                            mod.moddb.latest_compatible_version,
                            listing.game_version,
                            explicit=False,
                        )
                        plan.append(await self._planner.fetch(choice))
                        missing += await self._planner.missing(plan)
                        changes += await self._place(plan, keep_place=True)
                except ApiError as exc:
                    failed.append(ModFailure(modid=mod.modid, code=exc.code, message=exc.message))
                    logger.warning("mod_update_failed", modid=mod.modid, code=exc.code)
            return await self._result(changes, missing, failed=failed)

    async def enable(self, modid: str) -> ModOperation:
        return await self._move(modid, enabled=True, force=True)

    async def disable(self, modid: str, *, force: bool) -> ModOperation:
        return await self._move(modid, enabled=False, force=force)

    async def remove(self, modid: str, *, force: bool) -> ModOperation:
        async with self._exclusive(f"remove {modid}"):
            entries = await self._entries_of(modid)
            await self._refuse_if_required(modid, force)
            async with self._files(f"mod remove {modid}"):
                await asyncio.to_thread(self._store.remove, entries)
            version = entries[0].mod.version
            change = ModChange(
                modid=modid,
                action="removed",
                from_version=version,
                to_version=None,
                file=None,
                reason=f"{modid} {version} removed" if version else f"{modid} removed",
            )
            return await self._result([change], [])

    async def rollback(self, modid: str) -> ModOperation:
        """Back to the version kept last; the current one is dropped, so another rollback goes
        one further back."""
        async with self._exclusive(f"rollback {modid}"):
            async with self._files(f"mod rollback {modid}"):
                outcome = await asyncio.to_thread(self._store.roll_back, modid)
            if outcome is None:
                raise NoPreviousVersion(f"no previous version of {modid} is kept to roll back to")
            restored, dropped = outcome
            before = dropped[0].mod.version if dropped else None
            after = restored.mod.version
            change = ModChange(
                modid=modid,
                action="rolled_back",
                from_version=before,
                to_version=after,
                file=restored.path.name,
                reason=f"{modid} {before or '(removed)'} → {after} (rollback)",
            )
            return await self._result([change], await self._planner.missing_for([restored.mod]))

    # --- steps -----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _exclusive(self, what: str) -> AsyncIterator[None]:
        if self._lock.locked():
            raise ModOperationInProgress(
                f"another mod operation ({self._running}) is in progress; try again when it is done"
            )
        async with self._lock:
            self._running = what
            try:
                yield
            finally:
                self._running = None

    @contextlib.asynccontextmanager
    async def _files(self, holder: str) -> AsyncIterator[None]:
        """The file moves: no start or stop of the game server meanwhile, and a disk error is
        a clear answer, not a 500 without a reason."""
        async with self._gameserver.lifecycle(holder):
            try:
                yield
            except OSError as exc:
                logger.error("mod_files_write_failed", holder=holder, error=str(exc))
                raise ModWriteFailed(
                    f"could not change the mod folders: {exc.strerror or exc}"
                ) from None

    async def _move(self, modid: str, *, enabled: bool, force: bool) -> ModOperation:
        verb = "enable" if enabled else "disable"
        async with self._exclusive(f"{verb} {modid}"):
            entries = await self._entries_of(modid)
            if any(e.enabled == enabled for e in entries):
                entry = next(e for e in entries if e.enabled == enabled)
                unchanged = ModChange(
                    modid=modid,
                    action="unchanged",
                    from_version=entry.mod.version,
                    to_version=entry.mod.version,
                    file=entry.path.name,
                    reason=f"{modid} is already {verb}d",
                )
                return await self._result([unchanged], [], note=False)
            if not enabled:
                await self._refuse_if_required(modid, force)
            async with self._files(f"mod {verb} {modid}"):
                moved = await asyncio.to_thread(self._store.move, entries[0], enabled=enabled)
            change = ModChange(
                modid=modid,
                action="enabled" if enabled else "disabled",
                from_version=moved.mod.version,
                to_version=moved.mod.version,
                file=moved.path.name,
                reason=f"{modid} {verb}d",
            )
            missing = await self._planner.missing_for([moved.mod]) if enabled else []
            return await self._result([change], missing)

    async def _place(self, plan: list[Prepared], *, keep_place: bool) -> list[ModChange]:
        """Move the checked archives in. An update keeps a disabled mod disabled; an install
        (and its dependencies) is enabled."""
        changes: list[ModChange] = []
        holder = f"mod install {plan[0].modid}"
        async with self._files(holder):
            for item in plan:
                existing = await asyncio.to_thread(self._store.find, item.modid)
                enabled = not keep_place or not existing or any(e.enabled for e in existing)
                entry, replaced = await asyncio.to_thread(
                    self._store.install,
                    item.staged,
                    filename=item.filename,
                    modid=item.modid,
                    version=item.mod.version,
                    enabled=enabled,
                )
                before = replaced[0].mod.version if replaced else None
                after = entry.mod.version
                reason = (
                    f"{item.modid} {before} → {after}"
                    if replaced
                    else f"{item.modid} {after} installed"
                )
                changes.append(
                    ModChange(
                        modid=item.modid,
                        action="updated" if replaced else "installed",
                        from_version=before,
                        to_version=after,
                        file=entry.path.name,
                        compatibility=item.compatibility,
                        reason=reason,
                    )
                )
                logger.info("mod_installed", modid=item.modid, version=after, replaced=before)
        return changes

    async def _result(
        self,
        changes: list[ModChange],
        missing: list[MissingDependency],
        *,
        failed: list[ModFailure] | None = None,
        note: bool = True,
    ) -> ModOperation:
        pending = False
        if note:
            for change in changes:
                pending = self._gameserver.add_restart_reason(change.reason) or pending
        return ModOperation(
            changes=changes,
            missing_dependencies=missing,
            failed=failed or [],
            restart_pending=pending,
        )

    async def _entries(self) -> list[Entry]:
        return await asyncio.to_thread(self._store.entries)

    async def _entries_of(self, modid: str) -> list[Entry]:
        entries = await asyncio.to_thread(self._store.find, modid)
        if not entries:
            raise ModNotInstalled(f"no mod with modid {modid!r} is installed")
        # The enabled one first: that is the version the game loads.
        return sorted(entries, key=lambda e: not e.enabled)

    async def _current(self, modid: str) -> Entry:
        return (await self._entries_of(modid))[0]

    async def _refuse_if_required(self, modid: str, force: bool) -> None:
        if force:
            return
        listing = await self._catalog.mod_list()
        needed_by = dependents(listing.mods, modid)
        if needed_by:
            raise ModRequiredBy(
                f"{modid} is required by {', '.join(needed_by)}; pass force=true to do it anyway"
            )


def build_mod_manager(
    settings: Settings,
    client: httpx.AsyncClient,
    catalog: ModsService,
    gameserver: GameServerService,
) -> ModManager:
    """The manager as the lifespan builds it, on the shared HTTP client."""
    source = ModSource(
        JsonFetcher(client, FetchPolicy.from_settings(settings)),
        api_url=str(settings.mod_api_url),
        catalog=catalog,
        game_version=gameserver.installed_version,
        max_download_bytes=settings.mod_max_download_bytes,
        download_deadline=settings.mod_download_deadline,
    )
    return ModManager(
        source=source,
        store=ModStore(ModPaths.from_settings(settings), keep_previous=settings.mod_previous_kept),
        catalog=catalog,
        gameserver=gameserver,
        concurrency=settings.moddb_concurrency,
    )
