"""Game versions available for the dedicated server."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from vintagestory_api.errors import ServiceUnavailable, ValidationFailed, error_responses
from vintagestory_api.kit.envelope import ApiResponse, ok

from .deps import VersionsDep
from .schemas import Channel, LatestVersions, VersionList

router = APIRouter(
    prefix="/versions", tags=["versions"], responses=error_responses(ServiceUnavailable)
)


@router.get(
    "",
    summary="Game versions of a channel, newest first, from the last good check",
    responses=error_responses(ValidationFailed),
)
async def list_versions(
    versions: VersionsDep,
    channel: Annotated[Channel, Query(description="Release channel")] = "stable",
) -> ApiResponse[VersionList]:
    return ok(versions.version_list(channel))


@router.get(
    "/latest",
    summary="Latest stable and unstable versions, and whether the installed server is behind",
)
async def latest_versions(versions: VersionsDep) -> ApiResponse[LatestVersions]:
    return ok(await versions.latest())
