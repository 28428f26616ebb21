"""APScheduler building blocks: our trigger subclasses, the counting job store, and turning a
`Schedule` into a trigger and its fire times.

With `service.py`, the only module importing apscheduler. APScheduler 3.x ships no type
information, so pyproject tells mypy to treat it as `Any`; nothing it returns leaves this
package unconverted.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from typing import Any

from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from .cron import CronSpec
from .crontimes import CronTimes
from .errors import InvalidSchedule
from .specs import Schedule


class CronTimesTrigger(BaseTrigger):  # type: ignore[misc]  # apscheduler is untyped
    """Cron fire times as Debian cron runs them, from `crontimes.CronTimes`.

    APScheduler 3.11's own CronTrigger skips a day after a DST change (it adds 24 hours where
    the day had 23, agronholm/apscheduler #529, #606), fires fixed-time jobs twice in a repeated
    hour, and reads the two day fields differently from cron; the previews use this trigger
    too, so what an admin is shown is what runs.
    """

    def __init__(self, spec: CronSpec, tz: tzinfo) -> None:
        self.spec = spec
        self.timezone = tz
        self.times = CronTimes(spec.canonical, tz)

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        # As APScheduler's own triggers: the first fire at or after `now`, then each one after
        # the previous fire.
        if previous_fire_time is None:
            return self.times.next_after(now - _MICROSECOND)
        return self.times.next_after(previous_fire_time)

    def __str__(self) -> str:
        return f"cron[{self.spec.normalized}]"

    def __repr__(self) -> str:
        return f"<CronTimesTrigger ({self.spec.normalized!r}, timezone={self.timezone!s})>"


class LeadTrigger(BaseTrigger):  # type: ignore[misc]  # apscheduler is untyped
    """Fires `lead` earlier than `inner`: the inner trigger's times are the moments a job's
    work leads up to (a restart after its countdown), its fires are when that work begins."""

    def __init__(self, inner: Any, lead: timedelta) -> None:
        self.inner = inner
        self.lead = lead

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        previous = previous_fire_time + self.lead if previous_fire_time is not None else None
        moment: datetime | None = self.inner.get_next_fire_time(previous, now + self.lead)
        return moment - self.lead if moment is not None else None

    def __str__(self) -> str:
        return f"{self.inner} - {self.lead.total_seconds():g} s"


class VersionedJobStore(MemoryJobStore):  # type: ignore[misc]  # apscheduler is untyped
    """A MemoryJobStore that counts its changes.

    APScheduler changes a stored job's next fire time only through its store (`update_job`,
    after every submission and every `modify_job`), so the count grows whenever a job's
    `next_run_time` or paused state can have moved, including the moves made by firing.
    """

    def __init__(self) -> None:
        super().__init__()
        self.version = 0

    def add_job(self, job: Any) -> None:
        super().add_job(job)
        self.version += 1

    def update_job(self, job: Any) -> None:
        super().update_job(job)
        self.version += 1

    def remove_job(self, job_id: str) -> None:
        super().remove_job(job_id)
        self.version += 1

    def remove_all_jobs(self) -> None:
        super().remove_all_jobs()
        self.version += 1


_MICROSECOND = timedelta(microseconds=1)


def make_scheduler(store: VersionedJobStore, tz: tzinfo, misfire_grace_seconds: float) -> Any:
    """The AsyncIOScheduler with the product's job defaults: a late job runs once (coalesce),
    never beside itself, and a fire later than the grace time is recorded as missed."""
    return AsyncIOScheduler(
        jobstores={"default": store},
        executors={"default": AsyncIOExecutor()},
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": misfire_grace_seconds,
        },
        timezone=tz,
    )


def make_trigger(
    schedule: Schedule, start: datetime | None = None, *, lead_seconds: int | None = None
) -> Any:
    """The APScheduler trigger of `schedule`; an interval counts from `start` when given; with
    `lead_seconds`, every fire comes that much before the schedule's moment."""
    trigger: Any
    if schedule.cron is not None:
        trigger = CronTimesTrigger(schedule.cron, schedule.tz)
    elif schedule.at is not None:
        trigger = DateTrigger(run_date=schedule.at, timezone=schedule.tz)
    else:
        trigger = IntervalTrigger(
            seconds=schedule.interval_seconds, timezone=schedule.tz, start_date=start
        )
    if lead_seconds:
        return LeadTrigger(trigger, timedelta(seconds=lead_seconds))
    return trigger


def fire_times(schedule: Schedule, start: datetime, count: int) -> list[datetime]:
    """The first `count` fire times of `schedule` after `start`, as the scheduler would fire."""
    trigger = make_trigger(schedule, start=start)
    # An interval's first fire is one interval after `start`, a cron's the first match.
    first = trigger.get_next_fire_time(start if schedule.interval_seconds else None, start)
    return trigger_fire_times(trigger, first, count)


def trigger_fire_times(trigger: Any, first: datetime | None, count: int) -> list[datetime]:
    """Up to `count` fire times of an APScheduler trigger, starting with `first`."""
    times: list[datetime] = []
    fire = first
    while fire is not None and len(times) < count:
        times.append(fire)
        fire = trigger.get_next_fire_time(fire, fire)
    return times


def first_fire(trigger: Any, now: datetime) -> datetime | None:
    """The trigger's first fire time after `now`; None when it never fires again."""
    first: datetime | None = trigger.get_next_fire_time(None, now)
    return first


def require_first_fire(trigger: Any, tz: tzinfo, now: datetime) -> datetime:
    first = first_fire(trigger, now.astimezone(tz))
    if first is None:
        raise InvalidSchedule("cron", "this schedule never fires")
    return first
