"""Game versions from the public versions API, kept in a durable cache between checks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import structlog
from pydantic import BaseModel, ValidationError

from vintagestory_api.config import Settings
from vintagestory_api.errors import ExpectedFailure
from vintagestory_api.gameserver.errors import VersionsUnavailable
from vintagestory_api.gameserver.install import Release
from vintagestory_api.kit.cache_file import CacheFile
from vintagestory_api.kit.http import FetchPolicy, JsonFetcher, UpstreamError
from vintagestory_api.kit.schemas import CheckOutcome, ComponentHealth
from vintagestory_api.kit.version_numbers import (
    is_newer,
    newest,
    read_installed_game_version,
    version_key,
)

from .schemas import (
    CHANNELS,
    Channel,
    ChannelCache,
    LatestVersions,
    ServerVersion,
    VersionList,
    VersionsCache,
)

logger = structlog.get_logger()

CACHE_FILE = "versions-cache.json"
# Only the Linux dedicated server is installable by this service.
PLATFORM = "linuxserver"
_NEW_VERSION_EVENT: dict[Channel, str] = {
    "stable": "new_stable_version_detected",
    "unstable": "new_unstable_version_detected",
}


class CheckFailed(ExpectedFailure):
    """A check that got no fresh data at all; the message lists each reason."""


class _Urls(BaseModel):
    cdn: str | None = None
    local: str | None = None


class _PlatformFile(BaseModel):
    filename: str
    filesize: str | int
    md5: str
    urls: _Urls
    # The API sends the integer 1/0; a boolean is accepted too.
    latest: int | bool = 0


def parse_channel(url: str, payload: Any) -> list[ServerVersion]:
    """The channel's versions newest first; raises `UpstreamError` when nothing is usable."""
    if not isinstance(payload, dict):
        raise UpstreamError(url, f"expected a JSON object keyed by version, got {_kind(payload)}")
    found: list[tuple[str, _PlatformFile]] = []
    malformed: list[str] = []
    for version, platforms in payload.items():
        if version_key(version) is None or not isinstance(platforms, dict):
            malformed.append(str(version)[:40])
            continue
        if PLATFORM not in platforms:
            continue
        try:
            found.append((version, _PlatformFile.model_validate(platforms[PLATFORM])))
        except ValidationError:
            malformed.append(version)
    if malformed:
        logger.warning(
            "versions_entries_skipped", url=url, count=len(malformed), first=malformed[0]
        )
    if not found:
        detail = f"; {len(malformed)} malformed entries" if malformed else ""
        raise UpstreamError(url, f"no version with a Linux server download{detail}")
    found.sort(key=lambda item: version_key(item[0]) or ((), 0, 0), reverse=True)
    # Trust the published flag over key order or our own ordering; fall back to the highest.
    latest = newest([v for v, f in found if f.latest]) or found[0][0]
    return [
        ServerVersion(
            version=version,
            is_latest=version == latest,
            filename=file.filename,
            filesize=str(file.filesize),
            md5=file.md5,
            url=file.urls.cdn or file.urls.local or "",
        )
        for version, file in found
    ]


class VersionsService:
    """Checks both channels; serves the last good list of each, also right after a restart."""

    def __init__(
        self,
        fetcher: JsonFetcher,
        *,
        base_url: str,
        data_dir: Path,
        installed_version: Callable[[], str | None] | None = None,
    ) -> None:
        self._fetcher = fetcher
        # The game server's own answer when wired (app.py); else <data>/server/current_version.
        self._installed_version = installed_version or partial(
            read_installed_game_version, data_dir
        )
        self._base_url = base_url.rstrip("/")
        self._data_dir = data_dir
        self._lock = asyncio.Lock()
        self._file = CacheFile(
            data_dir / "state" / CACHE_FILE, VersionsCache.model_validate, name="versions_cache"
        )
        cached = self._file.load()
        self._cache = cached if cached is not None else VersionsCache()

    def state_file_health(self) -> dict[str, ComponentHealth]:
        return self._file.state_file_health()

    def last_checked_at(self) -> datetime | None:
        """When the versions were last checked (from the cache, so also after a restart)."""
        return self._cache.checked_at

    def channel_url(self, channel: Channel) -> str:
        return f"{self._base_url}/{channel}.json"

    def version_list(self, channel: Channel) -> VersionList:
        cached = self._channel(channel)
        return VersionList(
            channel=channel,
            versions=list(cached.versions),
            fetched_at=cached.fetched_at,
            last_check=cached.last_check,
        )

    async def installed_version(self) -> str | None:
        return await asyncio.to_thread(self._installed_version)

    async def release(self, wanted: str) -> Release | None:
        """The download of `wanted` (a version, `stable` or `unstable`) for the installer.

        A channel's newest is asked of the versions API now, and so is a version missing
        from the last good lists (out since the last check); when that check fails the last
        good lists answer, and VersionsUnavailable when there are none.
        """
        found = None if wanted in CHANNELS else self._find(wanted)
        if found is None:
            try:
                await self.check()
            except CheckFailed as exc:
                if not (self._cache.stable.versions or self._cache.unstable.versions):
                    raise VersionsUnavailable(
                        f"the version list could not be fetched and none is cached: {exc}"
                    ) from None
            found = self._find(wanted)
        if found is None:
            return None
        return Release(version=found.version, url=found.url, md5=found.md5)

    def _find(self, wanted: str) -> ServerVersion | None:
        for channel in CHANNELS:
            if wanted == channel:
                return next((v for v in self._channel(channel).versions if v.is_latest), None)
        for channel in CHANNELS:
            match = next((v for v in self._channel(channel).versions if v.version == wanted), None)
            if match is not None:
                return match
        return None

    async def latest(self) -> LatestVersions:
        installed = await self.installed_version()
        cache = self._cache
        stable = cache.stable.latest
        fetched = [at for at in (cache.stable.fetched_at, cache.unstable.fetched_at) if at]
        check = cache.last_check
        return LatestVersions(
            stable=stable,
            unstable=cache.unstable.latest,
            installed=installed,
            update_available=is_newer(stable, installed),
            checked_at=max(fetched) if fetched else None,
            status=check.status if check is not None else "never_checked",
            last_check=check,
        )

    async def check(self) -> dict[str, Any]:
        """Fetch both channels; raises `CheckFailed` only when neither could be read."""
        async with self._lock:
            outcomes = await asyncio.gather(
                *(self._fetch(channel) for channel in CHANNELS), return_exceptions=True
            )
            now = datetime.now(UTC)
            cache = self._cache.model_copy(deep=True)
            cache.checked_at = now
            result: dict[str, Any] = {}
            failures: list[str] = []
            for channel, outcome in zip(CHANNELS, outcomes, strict=True):
                if isinstance(outcome, UpstreamError):
                    failures.append(f"{channel}: {outcome}")
                    result[channel] = self._record_failure(cache, channel, outcome, now)
                elif isinstance(outcome, BaseException):
                    raise outcome
                else:
                    result[channel] = self._record_success(cache, channel, outcome, now)
            cache.last_check = CheckOutcome(
                status="failed" if len(failures) == len(CHANNELS) else "ok",
                reason="; ".join(failures) or None,
                checked_at=now,
            )
            self._cache = cache
            await self._save()
            if len(failures) == len(CHANNELS):
                raise CheckFailed("no version channel could be read: " + "; ".join(failures))
            return result

    async def _fetch(self, channel: Channel) -> list[ServerVersion]:
        url = self.channel_url(channel)
        return parse_channel(url, await self._fetcher.get_json(url))

    def _channel(self, channel: Channel) -> ChannelCache:
        return _entry(self._cache, channel)

    @staticmethod
    def _record_failure(
        cache: VersionsCache, channel: Channel, error: UpstreamError, now: datetime
    ) -> dict[str, Any]:
        entry = _entry(cache, channel)
        entry.last_check = CheckOutcome(status="failed", reason=str(error), checked_at=now)
        logger.warning(
            "versions_channel_check_failed",
            channel=channel,
            reason=str(error),
            kept_versions=len(entry.versions),
        )
        return {"status": "failed", "reason": str(error), "latest": entry.latest}

    @staticmethod
    def _record_success(
        cache: VersionsCache, channel: Channel, versions: list[ServerVersion], now: datetime
    ) -> dict[str, Any]:
        entry = _entry(cache, channel)
        previous = entry.latest
        latest = next((v.version for v in versions if v.is_latest), None)
        old_set = {v.version for v in entry.versions}
        added = [v.version for v in versions if v.version not in old_set] if old_set else []
        entry.versions = versions
        entry.latest = latest
        entry.fetched_at = now
        entry.last_check = CheckOutcome(status="ok", checked_at=now)
        if latest != previous:
            logger.info(_NEW_VERSION_EVENT[channel], old=previous, new=latest)
        return {
            "status": "ok",
            "latest": latest,
            "previous_latest": previous,
            "changed": latest != previous,
            "versions": len(versions),
            "added": added[:10],
        }

    async def _save(self) -> None:
        await self._file.save(self._cache.model_dump(mode="json"))


def build_versions_service(
    settings: Settings,
    client: httpx.AsyncClient,
    installed_version: Callable[[], str | None] | None = None,
) -> VersionsService:
    """The service as the lifespan builds it, on the shared HTTP client."""
    return VersionsService(
        JsonFetcher(client, FetchPolicy.from_settings(settings)),
        base_url=str(settings.versions_url),
        data_dir=settings.data_dir,
        installed_version=installed_version,
    )


def _entry(cache: VersionsCache, channel: Channel) -> ChannelCache:
    return cache.stable if channel == "stable" else cache.unstable


def _kind(value: Any) -> str:
    return {list: "an array", str: "a string", type(None): "null"}.get(type(value), "a value")
