"""Jobs, their runs and schedule previews, as the API shows them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from vintagestory_api.kit.schemas import ComponentHealth

# Kept in sync with the bound in cron.validate_interval; only documented here, the service
# enforces it so that a bad interval is INVALID_SCHEDULE like a bad cron.
MAX_INTERVAL_SECONDS = 31 * 24 * 3600

RunOutcome = Literal[
    "running",
    "succeeded",
    "failed",
    "timed_out",
    "skipped",
    "missed",
    "cancelled",
    "interrupted",
]
# catch_up: an interval job's run that fell due while the API was down, run once after start.
RunTrigger = Literal["schedule", "manual", "catch_up"]
TriggerType = Literal["interval", "cron", "date"]


class SchedulerHealth(BaseModel):
    status: Literal["running", "stopped"]
    job_count: int = Field(ge=0)
    running_jobs: int = Field(default=0, ge=0)
    run_history: ComponentHealth = Field(
        default_factory=lambda: ComponentHealth(status="ok"),
        description="The run database (<data>/state/runs.db): degraded when it was damaged and "
        "set aside, or cannot be written",
    )


class RunError(BaseModel):
    type: str = Field(description="Exception class name", examples=["TimeoutError"])
    message: str = Field(description="Exception text, truncated")


class JobRun(BaseModel):
    run_id: str
    job_id: str
    trigger: RunTrigger = Field(
        description="schedule: fired by its trigger; manual: run-now; catch_up: an interval "
        "job's run that fell due while the API was down, run once soon after it started"
    )
    outcome: RunOutcome
    scheduled_for: datetime | None = Field(
        default=None, description="When the trigger wanted it to run; null for manual runs"
    )
    started_at: datetime | None = Field(
        default=None, description="null when the run never started (skipped, missed)"
    )
    finished_at: datetime | None = None
    duration_ms: int | None = Field(default=None, ge=0)
    lateness_ms: int | None = Field(
        default=None, description="started_at (or the time of a skip/miss) minus scheduled_for"
    )
    reason: str | None = Field(
        default=None,
        description="Why it was skipped, missed, stopped or interrupted (the API stopped while "
        "it ran)",
    )
    error: RunError | None = None
    result: dict[str, Any] | None = Field(
        default=None, description="The small JSON summary the job returned, size-capped"
    )


class RunCounts(BaseModel):
    """Finished runs of one job per outcome, since the run database was created (kept across
    restarts; since the API started when it runs without one)."""

    # Frozen: the run history builds one per change of a job's counts and hands the same
    # object to every reader until the next change.
    model_config = ConfigDict(frozen=True)

    succeeded: int = 0
    failed: int = 0
    timed_out: int = 0
    skipped: int = 0
    missed: int = 0
    cancelled: int = 0
    interrupted: int = 0


class JobInfo(BaseModel):
    id: str
    name: str
    description: str | None = None
    trigger_type: TriggerType
    trigger_details: str = Field(examples=["every 4 hours"])
    interval_seconds: int | None = None
    cron: str | None = Field(default=None, description="Normalized 5-field crontab")
    timezone: str = Field(description="IANA timezone the schedule is read in")
    next_run_time: datetime | None = Field(description="null while paused")
    paused: bool
    running: bool
    timeout_seconds: float | None = Field(
        description="Effective timeout of the next run; null means none"
    )
    last_run: JobRun | None = None
    counts: RunCounts
    managed_by: str | None = Field(
        default=None,
        description="Where this job is defined and changed when not here (an admin schedule: "
        "/schedules/{id}); such a job can be run, paused and resumed here, not rescheduled or "
        "deleted",
        examples=["/schedules/nightly-restart"],
    )


class JobDetail(JobInfo):
    next_run_times: list[datetime] = Field(description="The next 5 fire times; empty when paused")


class JobList(BaseModel):
    jobs: list[JobInfo]


class RunList(BaseModel):
    job_id: str
    runs: list[JobRun] = Field(description="Newest first")
    next_before: str | None = Field(
        default=None,
        description="Pass as ?before= for the next (older) page; null when this page is the last",
    )


class JobDeleted(BaseModel):
    id: str
    deleted: Literal[True] = True


# The rules of `_exactly_one_schedule`, said in the schema too so that clients and contract
# fuzzing see them: a non-null interval (and no timezone), or a non-null cron.
_ONE_SCHEDULE: dict[str, Any] = {
    "oneOf": [
        {
            "required": ["interval_seconds"],
            "properties": {
                "interval_seconds": {"type": "integer"},
                "cron": {"type": "null"},
                "timezone": {"type": "null"},
            },
        },
        {
            "required": ["cron"],
            "properties": {"cron": {"type": "string"}, "interval_seconds": {"type": "null"}},
        },
    ]
}


class _ScheduleFields(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_ONE_SCHEDULE)

    interval_seconds: StrictInt | None = Field(
        default=None,
        description=(
            "Seconds between runs: 1 to 2678400 (31 days) for a job of your own. A built-in "
            "job's interval is its operator setting and has that setting's bounds (GET "
            "/config/api: server_versions_check and mod_cache_refresh 60 to 604800, "
            "metrics_collection 1 to 3600); to turn a built-in job off, DELETE it"
        ),
        json_schema_extra={"minimum": 1, "maximum": MAX_INTERVAL_SECONDS},
    )
    cron: str | None = Field(
        default=None,
        description="5-field crontab (minute hour day month weekday); 0 and 7 are Sunday",
        examples=["0 4 * * sun"],
    )
    timezone: str | None = Field(
        default=None, description="IANA timezone for cron; default VS_TIMEZONE or the host's"
    )

    @model_validator(mode="after")
    def _exactly_one_schedule(self) -> Self:
        if (self.interval_seconds is None) == (self.cron is None):
            raise ValueError("give exactly one of interval_seconds or cron")
        if self.timezone is not None and self.cron is None:
            raise ValueError("timezone only applies to cron")
        return self


class JobScheduleUpdate(_ScheduleFields):
    """A new schedule: `{"interval_seconds": N}` or `{"cron": "...", "timezone": "..."}`."""


# Previews list fire times from a start in this range: before 1970 nothing was ever scheduled,
# and far enough below year 9999 that 50 fire times of any schedule still fit in a datetime.
# Checked in previews.py (422 INVALID_SCHEDULE naming start), where the schedule's zone is known.
PREVIEW_START_MIN = datetime(1970, 1, 1, tzinfo=UTC)
PREVIEW_START_MAX = datetime(9000, 1, 1, tzinfo=UTC)


class TriggerPreviewRequest(_ScheduleFields):
    # Strict like the settings: "5" is a string, not a count.
    count: StrictInt = Field(default=5, ge=1, le=50, description="How many fire times to list")
    start: datetime | None = Field(
        default=None,
        description="List fire times after this moment (ISO 8601; without an offset it is read "
        "in the schedule's timezone), from 1970 to 9000; default now",
    )


class ScheduleWarningInfo(BaseModel):
    code: str = Field(
        description="TOO_FREQUENT, DST_SKIPPED (a wall time that does not exist that day) or "
        "DST_REPEATED (a wall time that occurs twice)",
        examples=["DST_SKIPPED"],
    )
    message: str


class TriggerPreview(BaseModel):
    trigger_type: Literal["interval", "cron"]
    normalized: str = Field(examples=["0 4 * * sun"])
    description: str = Field(examples=["At 04:00 AM, only on Sunday (Europe/Berlin)"])
    timezone: str
    next_run_times: list[datetime]
    warnings: list[ScheduleWarningInfo]
