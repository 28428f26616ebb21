"""Route dependencies for the mods services."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from vintagestory_api.errors import ServiceUnavailable

from .manager import ModManager
from .service import ModsService


async def get_mods(request: Request) -> ModsService:
    mods: ModsService | None = getattr(request.app.state, "mods", None)
    if mods is None:
        raise ServiceUnavailable("the mods service is not running")
    return mods


async def get_mod_manager(request: Request) -> ModManager:
    manager: ModManager | None = getattr(request.app.state, "mod_manager", None)
    if manager is None:
        raise ServiceUnavailable("the mods service is not running")
    return manager


ModsDep = Annotated[ModsService, Depends(get_mods)]
ModManagerDep = Annotated[ModManager, Depends(get_mod_manager)]
