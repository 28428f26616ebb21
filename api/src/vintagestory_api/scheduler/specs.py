"""What a job is beyond its trigger: the function, its arguments and its validated schedule."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any, TypedDict

from .cron import (
    CronSpec,
    describe_cron,
    describe_interval,
    parse_crontab,
    parse_timezone,
    timezone_name,
    validate_interval,
)
from .errors import InvalidSchedule
from .schemas import JobInfo, JobRun, RunCounts

# Only coroutine functions: a sync job would run in a thread that a timeout or a shutdown
# cannot stop. The returned mapping becomes the run's `result`.
JobFunc = Callable[..., Awaitable[Mapping[str, Any] | None]]


def local_time(moment: datetime, tz: tzinfo) -> datetime:
    """`moment` as wall time in `tz`. Going through UTC also fixes the label of a fire time that
    falls in a DST gap: APScheduler reports 02:30+01:00 for what is really 03:30+02:00."""
    return moment.astimezone(UTC).astimezone(tz)


@dataclass(frozen=True)
class Schedule:
    """Exactly one of an interval, a cron spec or a one-off time, and the timezone it is read in."""

    tz: tzinfo
    interval_seconds: int | None = None
    cron: CronSpec | None = None
    at: datetime | None = None

    @property
    def kind(self) -> str:
        if self.cron is not None:
            return "cron"
        return "date" if self.at is not None else "interval"

    def describe(self) -> str:
        return self._description

    @functools.cached_property
    def _description(self) -> str:
        # Cached: GET /jobs describes every job on every request, and a schedule never changes
        # (rescheduling makes a new one). cached_property writes the instance dict directly, so
        # it works on a frozen dataclass.
        if self.cron is not None:
            return describe_cron(self.cron, timezone_name(self.tz))
        if self.at is not None:
            return f"once at {local_time(self.at, self.tz).isoformat()}"
        return describe_interval(self.interval_seconds or 0)


def one_off_schedule(at: datetime, *, default_tz: tzinfo) -> Schedule:
    """A schedule that fires once at `at` (naive means in `default_tz`)."""
    moment = at.replace(tzinfo=default_tz) if at.tzinfo is None else at
    return Schedule(tz=default_tz, at=moment.astimezone(UTC))


def parse_schedule(
    *,
    interval_seconds: object = None,
    cron: str | None = None,
    timezone: str | None = None,
    default_tz: tzinfo,
) -> Schedule:
    """Check `{interval_seconds}` or `{cron, timezone}`; InvalidSchedule names the bad field."""
    if (interval_seconds is None) == (cron is None):
        raise InvalidSchedule("schedule", "give exactly one of interval_seconds or cron")
    if cron is not None:
        spec = parse_crontab(cron)
        return Schedule(tz=parse_timezone(timezone, default_tz), cron=spec)
    if timezone is not None:
        raise InvalidSchedule("timezone", "only applies to cron schedules")
    return Schedule(tz=default_tz, interval_seconds=validate_interval(interval_seconds))


class JobOptions(TypedDict, total=False):
    """What a job is beyond its schedule (see `specs.job_spec`)."""

    name: str | None
    description: str | None
    args: Sequence[Any]
    # None: the scheduler's default timeout applies, as it is at the time of each run.
    timeout_seconds: float | None
    # Registered without a next fire time until resumed.
    paused: bool
    # A frequent routine job: its successful runs are logged at debug, not info.
    quiet: bool
    # The job's work culminates this many seconds after each fire (a countdown before a
    # restart): the trigger's times are those moments, fires come this much earlier, and the
    # function is called with `action_at`, the moment its fire leads up to.
    lead_seconds: int
    # Where the job is defined and changed, when not through /jobs (e.g. "/schedules/nightly").
    managed_by: str


@dataclass(frozen=True)
class JobSpec:
    job_id: str
    func: JobFunc
    args: tuple[Any, ...]
    name: str
    description: str | None
    # None: the scheduler's default timeout applies, as it is at the time of each run.
    timeout_seconds: float | None
    schedule: Schedule
    quiet: bool = False
    lead_seconds: int | None = None
    managed_by: str | None = None


def job_info(
    spec: JobSpec,
    next_run: datetime | bool | None,
    *,
    running: bool,
    timeout_seconds: float | None,
    last_run: JobRun | None,
    counts: RunCounts,
) -> JobInfo:
    """The API view of a job; `next_run` is APScheduler's (None: paused, False: not started)."""
    schedule = spec.schedule
    return JobInfo(
        id=spec.job_id,
        name=spec.name,
        description=spec.description,
        trigger_type=schedule.kind,
        trigger_details=schedule.describe(),
        interval_seconds=schedule.interval_seconds,
        cron=schedule.cron.normalized if schedule.cron is not None else None,
        timezone=timezone_name(schedule.tz),
        next_run_time=local_time(next_run, schedule.tz) if isinstance(next_run, datetime) else None,
        paused=next_run is None,
        running=running,
        timeout_seconds=timeout_seconds,
        last_run=last_run,
        counts=counts,
        managed_by=spec.managed_by,
    )


def job_spec(
    func: JobFunc,
    job_id: str,
    schedule: Schedule,
    *,
    name: str | None,
    description: str | None,
    args: Sequence[Any],
    timeout_seconds: float | None,
    quiet: bool = False,
    lead_seconds: int | None = None,
    managed_by: str | None = None,
) -> JobSpec:
    """A checked job definition; programming errors raise TypeError / ValueError."""
    if not inspect.iscoroutinefunction(func):
        raise TypeError(
            f"job '{job_id}': {func!r} is not an `async def` function; only coroutine "
            "functions can be scheduled (a thread running a sync job cannot be timed out or "
            "cancelled)"
        )
    if not job_id:
        raise ValueError("job_id must not be empty")
    if timeout_seconds is not None and timeout_seconds <= 0:
        raise ValueError(f"job '{job_id}': timeout_seconds must be positive")
    if lead_seconds is not None and lead_seconds < 0:
        raise ValueError(f"job '{job_id}': lead_seconds must not be negative")
    return JobSpec(
        job_id=job_id,
        func=func,
        args=tuple(args),
        name=name or job_id,
        description=description,
        timeout_seconds=timeout_seconds,
        schedule=schedule,
        quiet=quiet,
        lead_seconds=lead_seconds,
        managed_by=managed_by,
    )
