"""Who am I, and short-lived tokens for the WebSockets browsers open."""

from __future__ import annotations

from fastapi import APIRouter

from vintagestory_api.errors import error_responses
from vintagestory_api.kit.envelope import ApiResponse, ok

from .deps import AdminDep, RoleDep, WsTokensDep
from .errors import Forbidden, Unauthorized
from .schemas import WhoAmI, WsToken

router = APIRouter(prefix="/auth", tags=["auth"])


@router.get(
    "/me",
    summary="The role of the API key you sent",
    responses=error_responses(Unauthorized),
)
async def whoami(role: RoleDep) -> ApiResponse[WhoAmI]:
    return ok(WhoAmI(role=role))


@router.post(
    "/ws-token",
    summary="A single-use token for opening a WebSocket (admin only)",
    description="A browser cannot send the `X-API-Key` header when it opens a WebSocket: ask for "
    "a token here (with the key) and open the socket with `?token=<token>`. The token carries "
    "your role, works for one connection, and expires after `ttl_seconds` if unused. It lives "
    "only in this process's memory: an API restart forgets every token.",
    responses=error_responses(Forbidden),
)
async def ws_token(role: AdminDep, tokens: WsTokensDep) -> ApiResponse[WsToken]:
    issued = tokens.issue(role)
    return ok(
        WsToken(
            token=issued.token,
            role=role,
            expires_at=issued.expires_at,
            ttl_seconds=issued.ttl_seconds,
        )
    )
