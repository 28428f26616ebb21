"""Who am I: the role of the presented key."""

from __future__ import annotations

from fastapi import APIRouter

from vintagestory_api.errors import error_responses
from vintagestory_api.kit.envelope import ApiResponse, ok

from .deps import RoleDep
from .errors import Unauthorized
from .schemas import WhoAmI

router = APIRouter(prefix="/auth", tags=["auth"])


@router.get(
    "/me",
    summary="The role of the API key you sent",
    responses=error_responses(Unauthorized),
)
async def whoami(role: RoleDep) -> ApiResponse[WhoAmI]:
    return ok(WhoAmI(role=role))
