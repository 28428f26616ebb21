"""Health and readiness answers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from vintagestory_api.kit.schemas import ComponentHealth
from vintagestory_api.scheduler.schemas import SchedulerHealth


class DiskHealth(BaseModel):
    path: str
    total_bytes: int
    used_bytes: int
    free_bytes: int
    used_percent: float


class HealthData(BaseModel):
    api: Literal["healthy"] = "healthy"
    version: str
    scheduler: SchedulerHealth
    disk: DiskHealth | None = Field(description="Space on the data directory's filesystem")
    settings: ComponentHealth = Field(default_factory=lambda: ComponentHealth(status="ok"))


class ReadyData(BaseModel):
    ready: bool
    checks: dict[str, bool] = Field(description="Each readiness check and whether it passes")
