"""What the schedule routes accept and answer: triggers, schedules, runs, holds, the timeline,
the export document."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictInt,
    Tag,
)

from vintagestory_api.scheduler.schemas import JobRun, ScheduleWarningInfo

from .steps import Message, Step

EXPORT_VERSION = 1
MAX_SCHEDULES = 200
RESERVED_IDS = frozenset({"timeline", "export", "import", "templates"})
ScheduleId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[a-z0-9][a-z0-9-]*$",
        description="A slug: lower-case letters, digits and dashes",
        examples=["nightly-restart"],
    ),
]


class CronTrigger(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cron: str = Field(max_length=256, examples=["0 4 * * *"], description="5-field crontab")
    timezone: str | None = Field(
        default=None,
        max_length=64,
        examples=["Europe/Berlin"],
        description="IANA timezone; default VS_TIMEZONE or the host's",
    )


class IntervalTrigger(BaseModel):
    model_config = ConfigDict(extra="forbid")

    interval_seconds: StrictInt = Field(ge=60, le=31 * 86400, examples=[21600])


class OneOffTrigger(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at: AwareDatetime = Field(
        description="ISO 8601 with an offset", examples=["2026-07-01T04:00:00+02:00"]
    )


def _trigger_kind(value: Any) -> str | None:
    """Which trigger a body is, by its keys (a trigger has no kind field of its own)."""
    fields: Any = value if isinstance(value, dict) else getattr(type(value), "model_fields", {})
    for key, tag in (("cron", "cron"), ("interval_seconds", "interval"), ("at", "at")):
        if key in fields:
            return tag
    return None


Trigger = Annotated[
    Annotated[CronTrigger, Tag("cron")]
    | Annotated[IntervalTrigger, Tag("interval")]
    | Annotated[OneOffTrigger, Tag("at")],
    Discriminator(
        _trigger_kind,
        custom_error_type="invalid_trigger",
        custom_error_message="give one of {cron, timezone}, {interval_seconds} or {at}",
    ),
]


class OnlyIf(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_players: StrictInt = Field(
        ge=0, le=10_000, description="Run only with at most this many players online"
    )


class Defer(BaseModel):
    """While more players than `only_if` allows are online: announce, wait, look again."""

    model_config = ConfigDict(extra="forbid")

    retry_every_seconds: StrictInt = Field(default=300, ge=1, le=86_400)
    give_up_after_seconds: StrictInt = Field(default=7200, ge=1, le=7 * 86_400)
    then: Literal["run", "skip"] = Field(
        default="skip", description="At the deadline: run anyway, or record the run as skipped"
    )
    announce: Message | None = Field(
        default=None, examples=["Restart postponed until the server is empty"]
    )


class _Definition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, examples=["Nightly restart"])
    trigger: Trigger
    enabled: bool = True
    steps: list[Step] = Field(min_length=1, max_length=20)
    only_if: OnlyIf | None = None
    defer: Defer | None = None


class ScheduleDefinition(_Definition):
    """A schedule without its id (PUT /schedules/{id})."""


_EXAMPLE: dict[str, Any] = {
    "id": "nightly-restart",
    "name": "Nightly restart",
    "trigger": {"cron": "0 4 * * *", "timezone": "Europe/Berlin"},
    "steps": [
        {"action": "backup"},
        {
            "action": "restart",
            "warn_before": [900, 300, 60, 10],
            "message": "Server restarts in {remaining}",
        },
    ],
    "only_if": {"max_players": 0},
    "defer": {"retry_every_seconds": 300, "give_up_after_seconds": 7200, "then": "run"},
}


class ScheduleCreate(_Definition):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_EXAMPLE]})

    id: ScheduleId


class TemplateRequest(BaseModel):
    """A common case in one call; the answer shows the schedule it expands to."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"template": "nightly-restart", "at": "04:00", "timezone": "Europe/Berlin"}
            ]
        },
    )

    template: Literal["nightly-restart"]
    at: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", examples=["04:00"])
    timezone: str | None = Field(default=None, max_length=64, examples=["Europe/Berlin"])
    id: ScheduleId | None = Field(default=None, description="Default: the template's name")
    name: str | None = Field(default=None, min_length=1, max_length=100)


def _create_kind(value: Any) -> str:
    return "template" if isinstance(value, dict) and "template" in value else "schedule"


ScheduleOrTemplate = Annotated[
    Annotated[ScheduleCreate, Tag("schedule")] | Annotated[TemplateRequest, Tag("template")],
    Discriminator(_create_kind),
]


class ScheduleUpdate(BaseModel):
    """PATCH: only the fields given change; the result is checked as a whole."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=100)
    trigger: Trigger | None = None
    enabled: bool | None = None
    steps: list[Step] | None = Field(default=None, min_length=1, max_length=20)
    only_if: OnlyIf | None = None
    defer: Defer | None = None


StepOutcome = Literal["succeeded", "failed", "timed_out", "skipped", "cancelled"]


class StepResult(BaseModel):
    index: int
    action: str
    outcome: StepOutcome
    started_at: datetime
    finished_at: datetime
    detail: str | None = None


class CurrentRun(BaseModel):
    """The run in progress: where it is, and what comes next."""

    started_at: datetime
    action_at: datetime = Field(description="The scheduled moment of its disruptive action")
    phase: Literal["deferred", "steps", "countdown", "action"]
    step: int | None = Field(default=None, description="Index of the step running")
    action: str | None = None
    next_warning_at: datetime | None = None
    next_warning: str | None = Field(default=None, examples=["Server restarts in 5 minutes"])
    deferred_until: datetime | None = Field(
        default=None, description="While deferred: when it gives up"
    )
    steps: list[StepResult] = Field(default_factory=list, description="Steps finished so far")


class Occurrence(BaseModel):
    """A change to one occurrence only."""

    action_at: datetime = Field(description="The occurrence's scheduled moment")
    by: str = Field(description="The role that asked")


class Postponement(Occurrence):
    to: datetime = Field(description="When it happens instead")


class ScheduleStatus(BaseModel):
    job_id: str = Field(examples=["schedule.nightly-restart"])
    disruptive: bool = Field(
        description="Takes the game server's lock (stop, start, restart, install, backup)"
    )
    lead_seconds: int = Field(description="How long before the action a run starts")
    paused: bool
    next_action_at: datetime | None = Field(description="When the next occurrence's action is")
    next_run_at: datetime | None = Field(description="When its run (countdown) starts")
    next_action_times: list[datetime] = Field(description="The next 5 action moments")
    skip_next: Occurrence | None = None
    postponed: Postponement | None = None
    running: CurrentRun | None = None
    last_run: JobRun | None = Field(default=None, description="Its steps are in result.steps")


class Schedule(ScheduleCreate):
    description: str = Field(examples=["At 04:00 AM (Europe/Berlin)"])
    status: ScheduleStatus
    warnings: list[ScheduleWarningInfo]


class ScheduleList(BaseModel):
    schedules: list[Schedule]


class ScheduleDeleted(BaseModel):
    id: str
    deleted: Literal[True] = True


class PostponeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    minutes: StrictInt = Field(ge=1, le=7 * 1440, examples=[30])


HoldScope = Literal["disruptive", "all"]


class HoldCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "until": "2026-07-01T20:00:00+02:00",
                    "reason": "event night",
                    "scope": "disruptive",
                }
            ]
        },
    )

    until: AwareDatetime
    reason: str = Field(min_length=1, max_length=200, pattern=r"^[^\r\n\x00]*$")
    scope: HoldScope = Field(
        default="disruptive",
        description="disruptive: schedules that take the game server's lock; all: every schedule",
    )


class Hold(BaseModel):
    id: str
    until: datetime
    reason: str
    scope: HoldScope
    created_at: datetime
    created_by: str


class HoldList(BaseModel):
    holds: list[Hold] = Field(description="Active holds, soonest to end first")


class HoldDeleted(BaseModel):
    id: str
    deleted: Literal[True] = True


TimelineKind = Literal[
    "job", "countdown_start", "schedule_action", "skipped", "hold_start", "hold_end"
]


class TimelineEntry(BaseModel):
    at: datetime
    kind: TimelineKind
    source: str = Field(description="A job id, a schedule id or a hold id")
    description: str


class Timeline(BaseModel):
    start: datetime
    end: datetime
    entries: list[TimelineEntry]
    truncated: bool = Field(description="True when the list was cut at its limit")


class ExportDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = Field(default=1, description="The document format; 1")
    exported_at: datetime | None = None
    schedules: list[ScheduleCreate] = Field(max_length=MAX_SCHEDULES)


class ImportResult(BaseModel):
    dry_run: bool
    created: list[str]
    updated: list[str]
    deleted: list[str]
    unchanged: list[str]
    warnings: dict[str, list[ScheduleWarningInfo]] = Field(
        description="Per schedule id, what a save would warn about"
    )
