"""Installed mods and their state in the mod database, kept in a durable cache between refreshes."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import structlog

from vintagestory_api.config import Settings
from vintagestory_api.errors import ExpectedFailure
from vintagestory_api.kit.cache_file import CacheFile
from vintagestory_api.kit.http import (
    FetchPolicy,
    JsonFetcher,
    UpstreamError,
    UpstreamUnreachable,
)
from vintagestory_api.kit.schemas import CheckOutcome, ComponentHealth
from vintagestory_api.kit.version_numbers import (
    is_newer,
    newest,
    read_installed_game_version,
)

from .modinfo import ModFile, ModScanner
from .schemas import InstalledMod, ModCache, ModDbEntry, ModDbInfo, ModList
from .store import DISABLED_DIR

logger = structlog.get_logger()

CACHE_FILE = "mod-cache.json"


class ModRefreshFailed(ExpectedFailure):
    """No lookup got an answer from the mod database; the message says why."""


def parse_mod(
    url: str, payload: Any, *, game_version: str | None, site_url: str, now: datetime
) -> ModDbEntry | None:
    """What the database says about one mod; None when it does not know the mod.

    The database answers HTTP 200 for everything; the outcome is the string `statuscode`.
    """
    if not isinstance(payload, dict):
        raise UpstreamError(url, "expected a JSON object")
    code = str(payload.get("statuscode", ""))
    if code == "404":
        return None
    if code != "200":
        raise UpstreamError(url, f"mod database answered statuscode {code or '(missing)'}")
    mod = payload.get("mod")
    releases = mod.get("releases") if isinstance(mod, dict) else None
    if not isinstance(mod, dict) or not isinstance(releases, list):
        raise UpstreamError(url, "answer has no mod object with a releases list")
    versions: list[tuple[str, set[str]]] = []
    for release in releases:
        if not isinstance(release, dict) or not isinstance(release.get("modversion"), str):
            continue
        tags = release.get("tags") if isinstance(release.get("tags"), list) else None
        names = {t.strip().removeprefix("v") for t in tags or () if isinstance(t, str)}
        versions.append((release["modversion"], names))
    # Releases come newest first; a backport can be newer by date and older by number.
    latest = newest([v for v, _ in versions]) or (versions[0][0] if versions else None)
    compatible = (
        newest([v for v, tags in versions if game_version in tags]) if game_version else None
    )
    downloads = mod.get("downloads")
    if not isinstance(downloads, int) or isinstance(downloads, bool):
        downloads = None
    return ModDbEntry(
        status="found",
        url=_page_url(site_url, mod),
        latest_version=latest,
        latest_compatible_version=compatible,
        game_version=game_version,
        downloads=downloads,
        fetched_at=now,
    )


class ModsService:
    """Scans the Mods directory and looks each mod up in the mod database."""

    def __init__(
        self,
        fetcher: JsonFetcher,
        *,
        api_url: str,
        data_dir: Path,
        concurrency: int = 4,
        refresh_budget: float = 240.0,
        installed_version: Callable[[], str | None] | None = None,
        mods_dir: Path | None = None,
        disabled_dir: Path | None = None,
    ) -> None:
        self._fetcher = fetcher
        # The game server's own answer when wired (app.py); else <data>/server/current_version.
        self._installed_version = installed_version or partial(
            read_installed_game_version, data_dir
        )
        self._api_url = api_url.rstrip("/")
        self._site_url = self._api_url.removesuffix("/api")
        self._data_dir = data_dir
        self._concurrency = concurrency
        # Bounds a refresh with many slow lookups so it ends (and saves) before its job timeout.
        self._refresh_budget = refresh_budget
        self._scanner = ModScanner(mods_dir or data_dir / "serverdata" / "Mods")
        self._disabled_scanner = ModScanner(disabled_dir or data_dir / DISABLED_DIR)
        self._scan_lock = threading.Lock()
        self._refresh_lock = asyncio.Lock()
        self._file = CacheFile(
            data_dir / "state" / CACHE_FILE, ModCache.model_validate, name="mod_cache"
        )
        cached = self._file.load()
        self._cache = cached if cached is not None else ModCache()

    def state_file_health(self) -> dict[str, ComponentHealth]:
        return self._file.state_file_health()

    def last_checked_at(self) -> datetime | None:
        """When the mod database was last asked (from the cache, so also after a restart)."""
        check = self._cache.last_check
        return check.checked_at if check is not None else None

    def mod_url(self, modid: str) -> str:
        return f"{self._api_url}/mod/{quote(modid, safe='')}"

    async def mod_list(self) -> ModList:
        files = await self._scan()
        game_version = await self._game_version()
        cache = self._cache
        return ModList(
            game_version=game_version,
            mods=[
                self._view(f, cache.mods.get(f.modid or ""), game_version, enabled=enabled)
                for f, enabled in files
            ],
            last_check=cache.last_check,
        )

    async def remember(
        self, modid: str, url: str, payload: Any, game_version: str | None, *, save: bool = True
    ) -> None:
        """Keep what a lookup made for an install said, so GET /mods shows it at once.

        With `save=False` it is only kept in memory until `save_remembered()`, so a batch of
        lookups writes the cache file once.
        """
        try:
            entry = parse_mod(
                url,
                payload,
                game_version=game_version,
                site_url=self._site_url,
                now=datetime.now(UTC),
            )
        except UpstreamError:
            return
        if entry is None:
            return
        mods = {**self._cache.mods, modid: entry}
        self._cache = self._cache.model_copy(update={"mods": mods})
        if save:
            await self._save()

    async def save_remembered(self) -> None:
        await self._save()

    async def _game_version(self) -> str | None:
        return await asyncio.to_thread(self._installed_version)

    async def refresh(self) -> dict[str, Any]:
        """Look up every installed mod; raises `ModRefreshFailed` when no lookup got an answer."""
        async with self._refresh_lock:
            files = await self._scan()
            game_version = await self._game_version()
            modids = sorted({f.modid for f, _ in files if f.modid})
            outcomes = await self._look_up_all(modids, game_version)
            now = datetime.now(UTC)
            mods: dict[str, ModDbEntry] = {}
            counts = {"refreshed": 0, "not_found": 0, "failed": 0}
            failures: list[str] = []
            for modid in modids:
                if modid in outcomes:
                    outcome = outcomes[modid]
                else:
                    outcome = UpstreamError(
                        self.mod_url(modid), "refresh time budget used up before this lookup"
                    )
                if isinstance(outcome, UpstreamError):
                    previous = self._cache.mods.get(modid) or ModDbEntry()
                    mods[modid] = previous.model_copy(update={"error": outcome.reason})
                    counts["failed"] += 1
                    failures.append(f"{modid}: {outcome.reason}")
                elif outcome is None:
                    mods[modid] = ModDbEntry(status="not_found", fetched_at=now)
                    counts["not_found"] += 1
                else:
                    mods[modid] = outcome
                    counts["refreshed"] += 1
            if failures:
                logger.warning("mod_lookups_failed", count=len(failures), first=failures[0])
            unusable = bool(modids) and counts["failed"] == len(modids)
            reason = (
                f"mod database could not be used: all {len(modids)} lookups failed "
                f"(first: {failures[0]})"
                if unusable
                else (f"{counts['failed']} of {len(modids)} lookups failed" if failures else None)
            )
            self._cache = ModCache(
                mods=mods,
                last_check=CheckOutcome(
                    status="failed" if unusable else "ok", reason=reason, checked_at=now
                ),
            )
            await self._save()
            if unusable:
                raise ModRefreshFailed(reason or "mod database could not be used")
            views = [
                self._view(f, mods.get(f.modid or ""), game_version, enabled=enabled)
                for f, enabled in files
            ]
            updates = sum(1 for view in views if view.moddb and view.moddb.update_available)
            return {
                "mods": len(files),
                "looked_up": len(modids),
                **counts,
                "updates_available": updates,
                "game_version": game_version,
            }

    async def _look_up_all(
        self, modids: list[str], game_version: str | None
    ) -> dict[str, ModDbEntry | UpstreamError | None]:
        outcomes: dict[str, ModDbEntry | UpstreamError | None] = {}
        semaphore = asyncio.Semaphore(self._concurrency)
        answered = False
        unreachable: UpstreamUnreachable | None = None

        async def look_up(modid: str) -> None:
            nonlocal answered, unreachable
            url = self.mod_url(modid)
            async with semaphore:
                if unreachable is not None and not answered:
                    # The database was unreachable and nothing has answered since: do not wait
                    # out the same failure once per installed mod.
                    outcomes[modid] = UpstreamUnreachable(url, f"skipped: {unreachable.reason}")
                    return
                try:
                    payload = await self._fetcher.get_json(url)
                except UpstreamUnreachable as exc:
                    unreachable = unreachable or exc
                    outcomes[modid] = exc
                    return
                except UpstreamError as exc:
                    answered = True
                    outcomes[modid] = exc
                    return
                answered = True
                try:
                    outcomes[modid] = parse_mod(
                        url,
                        payload,
                        game_version=game_version,
                        site_url=self._site_url,
                        now=datetime.now(UTC),
                    )
                except UpstreamError as exc:
                    outcomes[modid] = exc

        try:
            async with asyncio.timeout(self._refresh_budget):
                await asyncio.gather(*(look_up(modid) for modid in modids))
        except TimeoutError:
            logger.warning(
                "mod_refresh_budget_exhausted",
                budget_seconds=self._refresh_budget,
                done=len(outcomes),
                total=len(modids),
            )
        return outcomes

    async def _scan(self) -> list[tuple[ModFile, bool]]:
        """Every mod file, and whether it is enabled (in Mods, not in mods-disabled)."""
        return await asyncio.to_thread(self._scan_locked)

    def _scan_locked(self) -> list[tuple[ModFile, bool]]:
        with self._scan_lock:
            return [(f, True) for f in self._scanner.scan()] + [
                (f, False) for f in self._disabled_scanner.scan()
            ]

    @staticmethod
    def _view(
        file: ModFile, entry: ModDbEntry | None, game_version: str | None, *, enabled: bool
    ) -> InstalledMod:
        moddb = None
        if file.modid is not None and entry is not None:
            # Compatibility was computed for the game version installed at refresh time.
            compatible = (
                entry.latest_compatible_version if entry.game_version == game_version else None
            )
            moddb = ModDbInfo(
                status=entry.status,
                url=entry.url,
                latest_version=entry.latest_version,
                latest_compatible_version=compatible,
                update_available=is_newer(compatible, file.version),
                downloads=entry.downloads,
                fetched_at=entry.fetched_at,
                error=entry.error,
            )
        return InstalledMod(
            modid=file.modid,
            name=file.name,
            version=file.version,
            side=file.side,
            file=file.file,
            enabled=enabled,
            dependencies=dict(file.dependencies),
            error=file.error,
            moddb=moddb,
        )

    async def _save(self) -> None:
        await self._file.save(self._cache.model_dump(mode="json"))


def build_mods_service(
    settings: Settings,
    client: httpx.AsyncClient,
    installed_version: Callable[[], str | None] | None = None,
) -> ModsService:
    """The service as the lifespan builds it, on the shared HTTP client."""
    return ModsService(
        JsonFetcher(client, FetchPolicy.from_settings(settings)),
        api_url=str(settings.mod_api_url),
        data_dir=settings.data_dir,
        concurrency=settings.moddb_concurrency,
        installed_version=installed_version,
        mods_dir=settings.game_data_dir / "Mods",
        disabled_dir=settings.data_dir.absolute() / DISABLED_DIR,
    )


def _page_url(site_url: str, mod: dict[str, Any]) -> str | None:
    alias, assetid = mod.get("urlalias"), mod.get("assetid")
    if isinstance(alias, str) and alias:
        return f"{site_url}/{quote(alias, safe='')}"
    if isinstance(assetid, int | str) and str(assetid):
        return f"{site_url}/show/mod/{quote(str(assetid), safe='')}"
    return None
