"""Errors of authentication (no valid key) and authorisation (a role that may not do this)."""

from __future__ import annotations

from vintagestory_api.errors import ApiError


class AuthError(ApiError):
    """Base of the auth domain's errors."""


class Unauthorized(AuthError):
    status_code = 401
    code = "UNAUTHORIZED"
    example = "missing or invalid API key in the X-API-Key header"


class Forbidden(AuthError):
    status_code = 403
    code = "FORBIDDEN"
    example = "this operation needs the admin role"
