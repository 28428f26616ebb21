"""APScheduler building blocks: our trigger subclasses, the counting job store, and turning a
`Schedule` into a trigger and its fire times.

With `service.py`, the only module importing apscheduler. APScheduler 3.x ships no type
information, so pyproject tells mypy to treat it as `Any`; nothing it returns leaves this
package unconverted.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from .cron import CronSpec
from .errors import InvalidSchedule
from .specs import Schedule


class _CronTrigger(CronTrigger):  # type: ignore[misc]  # apscheduler is untyped (see pyproject)
    """A CronTrigger that, like cron, runs a fixed-time job once when DST repeats an hour.

    APScheduler fires "30 2 * * *" twice on the night clocks go back; cron runs jobs with a fixed
    minute and hour once and only wildcard jobs (`*/15 * * * *`) in both copies of the hour.
    """

    def __init__(self, *, once_in_repeated_hour: bool, **fields: Any) -> None:
        super().__init__(**fields)
        self.once_in_repeated_hour = once_in_repeated_hour

    def get_next_fire_time(self, previous: datetime | None, now: datetime) -> datetime | None:
        fire: datetime | None = super().get_next_fire_time(previous, now)
        while self.once_in_repeated_hour and fire is not None and _second_of_repeated(fire):
            fire = super().get_next_fire_time(fire, fire)
        return fire


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


def _second_of_repeated(moment: datetime) -> bool:
    return moment.fold == 1 and moment.replace(fold=0).utcoffset() != moment.utcoffset()


def _cron_trigger(spec: CronSpec, tz: tzinfo) -> Any:
    once = not spec.minute.startswith("*") and not spec.hour.startswith("*")

    def make(day: str, day_of_week: str) -> Any:
        return _CronTrigger(
            minute=spec.minute,
            hour=spec.hour,
            day=day,
            month=spec.month,
            day_of_week=day_of_week,
            timezone=tz,
            once_in_repeated_hour=once,
        )

    if spec.day_or:
        # Cron fires when either day field matches; APScheduler would require both.
        return OrTrigger([make(spec.day, "*"), make("*", spec.day_of_week)])
    return make(spec.day, spec.day_of_week)


def make_trigger(schedule: Schedule, start: datetime | None = None) -> Any:
    """The APScheduler trigger of `schedule`; an interval counts from `start` when given."""
    if schedule.cron is not None:
        return _cron_trigger(schedule.cron, schedule.tz)
    if schedule.at is not None:
        return DateTrigger(run_date=schedule.at, timezone=schedule.tz)
    return IntervalTrigger(
        seconds=schedule.interval_seconds, timezone=schedule.tz, start_date=start
    )


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
