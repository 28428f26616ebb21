"""Installed mods and their updates in the mod database."""

from __future__ import annotations

from fastapi import APIRouter

from vintagestory_api.deps import ModsDep
from vintagestory_api.models.envelope import ApiResponse, error_responses, ok
from vintagestory_api.models.mods import ModList

router = APIRouter(prefix="/mods", tags=["mods"], responses=error_responses(503))


@router.get(
    "",
    summary="Installed mods, each with what the mod database last said about it",
)
async def list_mods(mods: ModsDep) -> ApiResponse[ModList]:
    return ok(await mods.mod_list())
