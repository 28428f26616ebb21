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
    status: Literal["ok", "degraded"] = Field(
        default="ok", description="degraded when free space is below min_free_bytes"
    )
    reason: str | None = None
    min_free_bytes: int = Field(
        default=0, description="The threshold (VS_MIN_FREE_DISK_BYTES); 0 when the check is off"
    )


class HealthData(BaseModel):
    api: Literal["healthy"] = Field(
        default="healthy", description="Always healthy when the API answers (liveness)"
    )
    status: Literal["ok", "degraded"] = Field(
        default="ok",
        description="degraded when any part below is: the scheduler not running, the disk low "
        "on space, a state file damaged or failing to be written, or the game server failing",
    )
    version: str
    scheduler: SchedulerHealth
    disk: DiskHealth | None = Field(description="Space on the data directory's filesystem")
    settings: ComponentHealth = Field(
        default_factory=lambda: ComponentHealth(status="ok"),
        description="The operator settings and the job state files together: the first of "
        "them that is degraded",
    )
    state_files: dict[str, ComponentHealth] = Field(
        default_factory=dict,
        description="Each file the service keeps under <data>/state/, by name: degraded when it "
        "was damaged at startup (and set aside) or its last write failed",
        examples=[
            {
                "admin-api-key": {"status": "ok", "reason": None},
                "api-settings.json": {
                    "status": "degraded",
                    "reason": "api-settings.json: is a directory, not a regular file; kept as "
                    "api-settings.json.corrupt-20250101T000000000000Z; running on its backup "
                    "until the next successful change",
                },
            }
        ],
    )

    game_server: ComponentHealth | None = Field(
        default=None,
        description="degraded when the game server's supervision has given up: a crash loop "
        "(automatic restarts stopped until an admin starts it) or a missing .NET runtime",
    )
    backups: ComponentHealth | None = Field(
        default=None,
        description="degraded when the last good world backup is older than "
        "backup_max_age_hours (48 h by default once world_backup_cron is set), when there is "
        "none yet although one is due, or when damaged backup sidecars were set aside",
    )


class ReadyData(BaseModel):
    ready: bool
    checks: dict[str, bool] = Field(description="Each readiness check and whether it passes")
