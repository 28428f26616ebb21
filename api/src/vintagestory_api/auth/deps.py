"""The caller's role, from the `X-API-Key` header or a WebSocket's token, as dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security, WebSocket
from fastapi.security import APIKeyHeader
from starlette.requests import HTTPConnection

from .errors import Forbidden, Unauthorized
from .keys import (
    API_KEY_HEADER,
    UNAUTHORIZED_MESSAGE,
    ApiKeys,
    Role,
    log_auth_failure,
    presented_key,
)
from .tokens import WsTokens

# Every dependency here is `async def` although none awaits anything: FastAPI runs a plain `def`
# dependency in the thread pool, a thread hop per dependency per request for what is an
# attribute lookup. They must stay free of blocking I/O.

# Declares the header as an OpenAPI security scheme so /docs offers "Authorize". The value is
# read from the raw header bytes below, not from this (already decoded) string.
api_key_scheme = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    scheme_name="ApiKey",
    description="Admin or monitor API key",
)


async def get_role(request: Request, _: Annotated[str | None, Security(api_key_scheme)]) -> Role:
    """The caller's role, from `X-API-Key`; 401 when the key is missing or wrong."""
    keys: ApiKeys = request.app.state.api_keys
    presented = presented_key(request.scope.get("headers", ()))
    role = keys.role_for(presented) if presented else None
    if role is None:
        client = request.client.host if request.client else None
        log_auth_failure(client, request.method, request.url.path, presented)
        raise Unauthorized(UNAUTHORIZED_MESSAGE)
    return role


async def require_admin(role: Annotated[Role, Depends(get_role)]) -> Role:
    if role is not Role.ADMIN:
        raise Forbidden("this operation needs the admin role")
    return role


RoleDep = Annotated[Role, Depends(get_role)]
AdminDep = Annotated[Role, Depends(require_admin)]


async def get_ws_tokens(connection: HTTPConnection) -> WsTokens:
    tokens: WsTokens = connection.app.state.ws_tokens
    return tokens


WsTokensDep = Annotated[WsTokens, Depends(get_ws_tokens)]


def websocket_admin(websocket: WebSocket, tokens: WsTokens) -> Role:
    """The admin behind a WebSocket, from its `X-API-Key` header or else its `?token=`.

    A header, when sent, decides alone. A token sent is spent either way: the path it is in
    gets logged once the socket is accepted. Raises Unauthorized (no valid key or token) or
    Forbidden (not admin).
    """
    keys: ApiKeys = websocket.app.state.api_keys
    presented = presented_key(websocket.scope["headers"])
    token = websocket.query_params.get("token")
    token_role = tokens.redeem(token) if token else None
    if presented is not None:
        role = keys.role_for(presented) if presented else None
    else:
        role = token_role
    if role is None:
        client = websocket.client.host if websocket.client else None
        reason = "unknown, spent or expired token" if presented is None and token else None
        log_auth_failure(client, "WEBSOCKET", websocket.url.path, presented, reason=reason)
        raise Unauthorized(
            "missing or invalid API key in the X-API-Key header, or token in ?token= (from "
            f"POST /auth/ws-token: it works once, within {tokens.ttl:g} s)"
        )
    if role is not Role.ADMIN:
        raise Forbidden("this WebSocket needs the admin role")
    return role
