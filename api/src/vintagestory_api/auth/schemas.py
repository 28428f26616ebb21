"""What the auth routes answer."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from .keys import Role


class WhoAmI(BaseModel):
    role: Role


class WsToken(BaseModel):
    token: str = Field(description="Pass as `?token=` when opening a WebSocket; works once")
    role: Role = Field(description="The role the token carries: the one that asked for it")
    expires_at: datetime = Field(description="When it stops working if unused (UTC)")
    ttl_seconds: float = Field(description="How long it is valid from now")
