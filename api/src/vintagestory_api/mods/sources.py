"""Where mods come from: the mod database (look a mod up, pick its release, download it) and
uploads. Every archive lands in staging and is checked there; nothing here touches `Mods/`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote, urlsplit

import structlog

from vintagestory_api.errors import ApiError
from vintagestory_api.kit.http import JsonFetcher, UpstreamError

from .archive import ArchiveLimits, check_archive
from .errors import (
    ModArchiveInvalid,
    ModDatabaseUnavailable,
    ModDownloadFailed,
    ModNotInDatabase,
    NoCompatibleRelease,
)
from .modinfo import ModFile
from .releases import (
    ModRecord,
    ModReference,
    Release,
    find_in_list,
    parse_record,
    parse_reference,
    select_release,
)
from .schemas import Compatibility
from .service import ModsService

logger = structlog.get_logger()

_COPY_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Choice:
    """The release picked for a mod, before anything is downloaded."""

    modid: str
    release: Release
    compatibility: Compatibility


@dataclass(frozen=True)
class Prepared:
    """A checked archive in staging, ready to move into place."""

    modid: str
    compatibility: Compatibility
    staged: Path
    mod: ModFile
    filename: str


class ModSource:
    def __init__(
        self,
        fetcher: JsonFetcher,
        *,
        api_url: str,
        catalog: ModsService,
        game_version: Callable[[], str | None],
        limits: ArchiveLimits | None = None,
        max_download_bytes: int = 256 * 1024 * 1024,
        download_deadline: float = 600.0,
    ) -> None:
        self._fetcher = fetcher
        self._api_url = api_url.rstrip("/")
        self._site_host = urlsplit(self._api_url.removesuffix("/api")).hostname
        self._catalog = catalog
        self._game_version = game_version
        self._limits = limits or ArchiveLimits()
        self.max_download_bytes = max_download_bytes
        self._download_deadline = download_deadline

    def reference(self, mod: int | str) -> ModReference:
        return parse_reference(mod, site_host=self._site_host)

    async def take_upload(self, source: BinaryIO, filename: str, staged: Path) -> Prepared:
        """An uploaded archive, copied into `staged` and checked like a download."""
        label = f"upload {filename[:100]}"
        await asyncio.to_thread(_copy_capped, source, staged, self.max_download_bytes, label)
        mod = await asyncio.to_thread(check_archive, staged, label=label, limits=self._limits)
        assert mod.modid is not None  # parse_modinfo raises without one
        return Prepared(mod.modid, "unknown", staged, mod, filename)

    async def choose(
        self,
        ref: ModReference,
        version: str | None,
        game_version: str | None,
        *,
        explicit: bool,
        force: bool = False,
    ) -> Choice:
        record = await self.lookup(ref)
        name = record.modidstrs[0] if record.modidstrs else str(ref)
        selection = select_release(name, record, game_version=game_version, version=version)
        release = selection.release
        if explicit and selection.compatibility == "incompatible" and not force:
            raise NoCompatibleRelease(
                f"{name} {release.version} is made for game "
                f"{', '.join(sorted(release.tags)) or '(no version)'}, not {game_version}; "
                "pass force=true to install it anyway"
            )
        return Choice(release.modidstr or name, release, selection.compatibility)

    async def fetch(self, choice: Choice, staging: Callable[[], Path]) -> Prepared:
        """Download the chosen release into staging and check it; nothing else is touched."""
        release = choice.release
        label = f"{choice.modid} {release.version}"
        if release.url is None:
            raise ModDownloadFailed(f"{label}: the mod database lists no file for this release")
        staged = staging()
        try:
            await self._download(release.url, staged, label)
            mod = await asyncio.to_thread(
                check_archive,
                staged,
                label=label,
                limits=self._limits,
                modid=release.modidstr,
                version=release.version,
            )
        except BaseException:
            await asyncio.to_thread(staged.unlink, missing_ok=True)
            raise
        filename = release.filename or f"{choice.modid}_{release.version}.zip"
        return Prepared(mod.modid or choice.modid, choice.compatibility, staged, mod, filename)

    async def _download(self, url: str, staged: Path, label: str) -> None:
        try:
            size = await self._fetcher.download(
                url,
                staged,
                max_bytes=self.max_download_bytes,
                deadline=self._download_deadline,
            )
        except UpstreamError as exc:
            raise ModDownloadFailed(f"{label}: download failed: {exc.reason}") from None
        logger.info("mod_downloaded", mod=label, bytes=size)

    async def lookup(self, ref: ModReference, *, save: bool = True) -> ModRecord:
        """The mod's record; what it says is kept in the mod cache, written at once unless
        `save` is False (a batch writes it once at its end)."""
        key = ref.key
        if key is None and ref.alias is not None:
            # A page alias is usually the modid too; only when not is the full list needed.
            record = await self._record(ref.alias, save=save)
            if record is not None:
                return record
        if key is None:
            listing = await self._get(f"{self._api_url}/mods")
            found = find_in_list(listing, ref)
            if found is None:
                raise ModNotInDatabase(f"the mod database has no mod page {str(ref)!r}")
            key = str(found)
        record = await self._record(key, save=save)
        if record is None:
            raise ModNotInDatabase(f"the mod database knows no mod {key!r}")
        return record

    async def lookup_all(
        self, refs: list[ModReference], *, concurrency: int
    ) -> list[ModRecord | ApiError]:
        """Each mod's record or the error its lookup met, in order, at most `concurrency`
        at a time. The mod cache is written once for the batch, not once per mod."""
        semaphore = asyncio.Semaphore(concurrency)

        async def one(ref: ModReference) -> ModRecord | ApiError:
            async with semaphore:
                try:
                    return await self.lookup(ref, save=False)
                except ApiError as exc:
                    return exc

        results = await asyncio.gather(*(one(ref) for ref in refs))
        if any(isinstance(r, ModRecord) for r in results):
            await self._catalog.save_remembered()
        return results

    async def _record(self, key: str, *, save: bool) -> ModRecord | None:
        url = f"{self._api_url}/mod/{quote(key, safe='')}"
        payload = await self._get(url)
        try:
            record = parse_record(url, payload)
        except UpstreamError as exc:
            raise ModDatabaseUnavailable(f"the mod database answered badly: {exc.reason}") from None
        if record is not None and record.modidstrs:
            await self._catalog.remember(
                record.modidstrs[0], url, payload, self._game_version(), save=save
            )
        return record

    async def _get(self, url: str) -> Any:
        try:
            return await self._fetcher.get_json(url)
        except UpstreamError as exc:
            raise ModDatabaseUnavailable(
                f"the mod database could not be asked: {exc.reason}"
            ) from None


def _copy_capped(source: BinaryIO, target: Path, limit: int, label: str) -> None:
    copied = 0
    with target.open("wb") as out:
        while chunk := source.read(_COPY_CHUNK):
            copied += len(chunk)
            if copied > limit:
                raise ModArchiveInvalid(f"{label}: larger than the {limit} byte limit")
            out.write(chunk)
