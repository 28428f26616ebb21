"""Who am I: the role of the presented key."""

from __future__ import annotations

from fastapi import APIRouter

from vintagestory_api.deps import RoleDep
from vintagestory_api.models.envelope import ApiResponse, error_responses, ok
from vintagestory_api.models.health import WhoAmI

router = APIRouter(prefix="/auth", tags=["auth"])


@router.get(
    "/me",
    summary="The role of the API key you sent",
    responses=error_responses(401),
)
async def whoami(role: RoleDep) -> ApiResponse[WhoAmI]:
    return ok(WhoAmI(role=role))
