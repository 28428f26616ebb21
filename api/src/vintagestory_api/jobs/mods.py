"""The built-in mod database refresh."""

from __future__ import annotations

from typing import Any

from vintagestory_api.services.mods import ModsService


async def mod_cache_refresh(mods: ModsService) -> dict[str, Any]:
    """Look up installed mods; fails (raises) only when the mod database gave no answer at all."""
    return await mods.refresh()
