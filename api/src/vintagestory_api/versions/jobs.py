"""The built-in game-versions check."""

from __future__ import annotations

from typing import Any

from vintagestory_api.scheduler.builtin import BuiltinJob

from .service import VersionsService


async def server_versions_check(versions: VersionsService) -> dict[str, Any]:
    """Fetch both version channels; fails (raises) only when neither could be read."""
    return await versions.check()


def builtin_jobs(versions: VersionsService) -> list[BuiltinJob]:
    return [
        BuiltinJob(
            id="server_versions_check",
            func=server_versions_check,
            args=(versions,),
            setting="server_versions_refresh_interval",
            name="Game version check",
            description="Fetches the stable and unstable game versions and notes new releases",
            # Version data should be fresh right after startup, not a day later.
            run_immediately=True,
            last_run_at=versions.last_checked_at,
        )
    ]
