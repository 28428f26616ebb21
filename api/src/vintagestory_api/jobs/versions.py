"""The built-in game-versions check."""

from __future__ import annotations

from typing import Any

from vintagestory_api.services.versions import VersionsService


async def server_versions_check(versions: VersionsService) -> dict[str, Any]:
    """Fetch both version channels; fails (raises) only when neither could be read."""
    return await versions.check()
