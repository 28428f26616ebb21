"""Route dependency for the versions service."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from vintagestory_api.errors import ServiceUnavailable

from .service import VersionsService


async def get_versions(request: Request) -> VersionsService:
    versions: VersionsService | None = getattr(request.app.state, "versions", None)
    if versions is None:
        raise ServiceUnavailable("the versions service is not running")
    return versions


VersionsDep = Annotated[VersionsService, Depends(get_versions)]
