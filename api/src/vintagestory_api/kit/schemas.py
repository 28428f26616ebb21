"""Small schemas shared by several domains: a component's health and an upstream check's outcome."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class ComponentHealth(BaseModel):
    status: Literal["ok", "degraded"]
    reason: str | None = None


class CheckOutcome(BaseModel):
    """The outcome of the last upstream check, shared by the versions and mods views."""

    status: Literal["ok", "failed"] = Field(description="Whether the last check got fresh data")
    reason: str | None = Field(
        default=None, description="What went wrong, if anything (also partial failures)"
    )
    checked_at: datetime = Field(description="When the check finished (UTC)")
