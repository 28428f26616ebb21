"""Route dependency for the mods service."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from vintagestory_api.errors import ServiceUnavailable

from .service import ModsService


async def get_mods(request: Request) -> ModsService:
    mods: ModsService | None = getattr(request.app.state, "mods", None)
    if mods is None:
        raise ServiceUnavailable("the mods service is not running")
    return mods


ModsDep = Annotated[ModsService, Depends(get_mods)]
