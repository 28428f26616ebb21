"""Installed mods and their updates in the mod database."""

from __future__ import annotations

from fastapi import APIRouter

from vintagestory_api.errors import ServiceUnavailable, error_responses
from vintagestory_api.kit.envelope import ApiResponse, ok

from .deps import ModsDep
from .schemas import ModList

router = APIRouter(prefix="/mods", tags=["mods"], responses=error_responses(ServiceUnavailable))


@router.get(
    "",
    summary="Installed mods, each with what the mod database last said about it",
)
async def list_mods(mods: ModsDep) -> ApiResponse[ModList]:
    return ok(await mods.mod_list())
