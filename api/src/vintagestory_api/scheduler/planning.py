"""What a schedule will do, for other domains: a checked trigger, its coming moments and its
warnings, computed by the same code the scheduler fires by (nothing is scheduled here)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from .cron import timezone_name
from .schemas import ScheduleWarningInfo
from .specs import Schedule, local_time, one_off_schedule, parse_schedule
from .triggers import make_trigger
from .warnings import schedule_warnings


@dataclass(frozen=True)
class PlannedTrigger:
    """A validated trigger: a cron with its timezone, an interval, or a one-off moment."""

    schedule: Schedule

    @property
    def tz(self) -> tzinfo:
        return self.schedule.tz

    @property
    def timezone(self) -> str:
        return timezone_name(self.schedule.tz)

    def describe(self) -> str:
        return self.schedule.describe()

    def moments(self, start: datetime, end: datetime, limit: int = 1000) -> list[datetime]:
        """The trigger's moments after `start` up to `end` (UTC, at most `limit`).

        An interval counts from `start` (as a freshly registered job does)."""
        trigger = make_trigger(self.schedule, start=start)
        first = trigger.get_next_fire_time(start if self.schedule.interval_seconds else None, start)
        times: list[datetime] = []
        moment = first
        while moment is not None and moment <= end and len(times) < limit:
            times.append(moment.astimezone(UTC))
            moment = trigger.get_next_fire_time(moment, moment)
        return times

    def local(self, moment: datetime) -> datetime:
        return local_time(moment, self.schedule.tz)

    def warnings(self, start: datetime, moments: list[datetime]) -> list[ScheduleWarningInfo]:
        """Too frequent, and what DST changes do to these moments (from `start` on)."""
        found = schedule_warnings(
            interval_seconds=self.schedule.interval_seconds,
            spec=self.schedule.cron,
            tz=self.schedule.tz,
            fire_times=[local_time(m, self.schedule.tz) for m in moments],
            since=start.astimezone(self.schedule.tz),
        )
        return [ScheduleWarningInfo(code=w.code, message=w.message) for w in found]


def plan_trigger(
    *,
    cron: str | None = None,
    timezone: str | None = None,
    interval_seconds: int | None = None,
    at: datetime | None = None,
    default_tz: tzinfo,
) -> PlannedTrigger:
    """Check a trigger; `InvalidSchedule` names the bad field (cron, timezone, ...)."""
    if at is not None:
        return PlannedTrigger(one_off_schedule(at, default_tz=default_tz))
    return PlannedTrigger(
        parse_schedule(
            interval_seconds=interval_seconds,
            cron=cron,
            timezone=timezone,
            default_tz=default_tz,
        )
    )


__all__ = ["PlannedTrigger", "plan_trigger"]
