"""What `/auth/me` answers."""

from __future__ import annotations

from pydantic import BaseModel

from .keys import Role


class WhoAmI(BaseModel):
    role: Role
