"""The caller's role, from the `X-API-Key` header, as route dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from .errors import Forbidden, Unauthorized
from .keys import (
    API_KEY_HEADER,
    UNAUTHORIZED_MESSAGE,
    ApiKeys,
    Role,
    log_auth_failure,
    presented_key,
)

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
