"""The built-in mod database refresh."""

from __future__ import annotations

from typing import Any

from vintagestory_api.scheduler.builtin import BuiltinJob

from .service import ModsService


async def mod_cache_refresh(mods: ModsService) -> dict[str, Any]:
    """Look up installed mods; fails (raises) only when the mod database gave no answer at all."""
    return await mods.refresh()


def builtin_jobs(mods: ModsService) -> list[BuiltinJob]:
    return [
        BuiltinJob(
            id="mod_cache_refresh",
            func=mod_cache_refresh,
            args=(mods,),
            setting="mod_list_refresh_interval",
            name="Mod update check",
            description="Lists the installed mods and looks each one up in the mod database",
            # Mod data should be there right after startup, not hours later.
            run_immediately=True,
            last_run_at=mods.last_checked_at,
        )
    ]
