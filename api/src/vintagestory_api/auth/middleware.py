"""Answers 401 for a request under the API prefix without a valid key, before anything reads it.

The role itself is decided by `deps.get_role`, but FastAPI runs dependencies only after it has
parsed the body, so without this an unauthenticated request with a malformed body got a 422
naming its problems instead of a 401.
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from vintagestory_api.errors import error_body

from .keys import UNAUTHORIZED_MESSAGE, ApiKeys, log_auth_failure, presented_key


class ApiKeyMiddleware:
    def __init__(self, app: ASGIApp, *, prefix: str) -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not (
            path == self.prefix or path.startswith(self.prefix + "/")
        ):
            await self.app(scope, receive, send)
            return
        keys: ApiKeys = scope["app"].state.api_keys
        presented = presented_key(scope["headers"])
        if presented and keys.role_for(presented) is not None:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        log_auth_failure(client[0] if client else None, scope["method"], path, presented)
        response = JSONResponse(error_body("UNAUTHORIZED", UNAUTHORIZED_MESSAGE), status_code=401)
        await response(scope, receive, send)
