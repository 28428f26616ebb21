"""What schedules will do (pure): their action moments, the warnings a save answers, and the
timeline of everything coming."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from vintagestory_api.scheduler.errors import InvalidSchedule
from vintagestory_api.scheduler.planning import PlannedTrigger, plan_trigger
from vintagestory_api.scheduler.schemas import ScheduleWarningInfo

from .errors import ScheduleInvalid
from .schemas import (
    RESERVED_IDS,
    CronTrigger,
    Hold,
    IntervalTrigger,
    OneOffTrigger,
    ScheduleCreate,
    Trigger,
)
from .steps import DISRUPTIVE_ACTIONS, is_disruptive, warn_before

WEEK = timedelta(days=7)
CLOSE = timedelta(minutes=10)
# Disruptive actions more often than this warn as too frequent.
DISRUPTIVE_MIN_GAP = timedelta(hours=1)
# DST notes look this far ahead (in at most this many moments).
DST_HORIZON = timedelta(days=366)
DST_MOMENTS = 400


def planned(trigger: Trigger, default_tz: tzinfo, *, field: str = "body.trigger") -> PlannedTrigger:
    """The checked trigger; `ScheduleInvalid` names the field (body.trigger.cron, ...)."""
    try:
        if isinstance(trigger, CronTrigger):
            return plan_trigger(cron=trigger.cron, timezone=trigger.timezone, default_tz=default_tz)
        if isinstance(trigger, IntervalTrigger):
            return plan_trigger(interval_seconds=trigger.interval_seconds, default_tz=default_tz)
        return plan_trigger(at=trigger.at, default_tz=default_tz)
    except InvalidSchedule as exc:
        raise ScheduleInvalid(f"{field}.{exc.field}: {exc.reason}") from None


def check_rules(schedule: ScheduleCreate, where: str = "body") -> None:
    """The rules between fields a type cannot say; `ScheduleInvalid` names the field."""
    if schedule.id in RESERVED_IDS:
        raise ScheduleInvalid(f"{where}.id: '{schedule.id}' is reserved (a route name)")
    if schedule.defer is not None and schedule.only_if is None:
        raise ScheduleInvalid(f"{where}.defer: only applies together with only_if")
    counting = [i for i, step in enumerate(schedule.steps) if warn_before(step)]
    if len(counting) > 1:
        raise ScheduleInvalid(
            f"{where}.steps.{counting[1]}.warn_before: only one step can count down to the "
            f"scheduled time (steps.{counting[0]} does)"
        )


def action_label(schedule: ScheduleCreate) -> str:
    """What the schedule does to the server, for messages: its first disruptive action."""
    for step in schedule.steps:
        if step.action in DISRUPTIVE_ACTIONS:
            return step.action
    return schedule.steps[0].action


@dataclass(frozen=True)
class Planned:
    schedule: ScheduleCreate
    trigger: PlannedTrigger

    @property
    def disruptive(self) -> bool:
        return is_disruptive(self.schedule.steps)

    def moments(self, start: datetime, end: datetime, limit: int = 2000) -> list[datetime]:
        return self.trigger.moments(start, end, limit)


def save_warnings(
    mine: Planned, others: Iterable[Planned], now: datetime
) -> list[ScheduleWarningInfo]:
    """DST and frequency notes of the trigger, and disruptive schedules close to each other."""
    dst_moments = mine.moments(now, now + DST_HORIZON, DST_MOMENTS)
    warnings = mine.trigger.warnings(now, dst_moments)
    if not mine.disruptive or not mine.schedule.enabled:
        return warnings
    week = mine.moments(now, now + WEEK)
    gaps = [b - a for a, b in itertools.pairwise(week)]
    frequent = any(w.code == "TOO_FREQUENT" for w in warnings)
    if gaps and min(gaps) < DISRUPTIVE_MIN_GAP and not frequent:
        label = action_label(mine.schedule)
        warnings.append(
            ScheduleWarningInfo(
                code="TOO_FREQUENT",
                message=f"the {label} happens more often than once an hour; every one of them "
                "interrupts the players",
            )
        )
    tz = mine.trigger.tz
    for other in others:
        same = other.schedule.id == mine.schedule.id
        if same or not other.disruptive or not other.schedule.enabled:
            continue
        note = _closest(mine, week, other, other.moments(now - CLOSE, now + WEEK + CLOSE), tz)
        if note is not None:
            warnings.append(ScheduleWarningInfo(code="CLOSE_TO_OTHER_SCHEDULE", message=note))
    return warnings


def _closest(
    mine: Planned,
    my_times: Sequence[datetime],
    other: Planned,
    other_times: Sequence[datetime],
    tz: tzinfo,
) -> str | None:
    best: tuple[timedelta, datetime, datetime] | None = None
    index = 0
    for moment in my_times:
        while index < len(other_times) and other_times[index] < moment - CLOSE:
            index += 1
        for candidate in other_times[index : index + 3]:
            gap = abs(candidate - moment)
            if gap <= CLOSE and (best is None or gap < best[0]):
                best = (gap, moment, candidate)
    if best is None:
        return None
    gap, moment, candidate = best
    minutes = round(gap.total_seconds() / 60)
    mine_text = f"{action_label(mine.schedule)} at {moment.astimezone(tz):%H:%M}"
    other_text = f"{action_label(other.schedule)} at {candidate.astimezone(tz):%H:%M}"
    where = f"(schedule '{other.schedule.id}')"
    if gap == timedelta(0):
        return f"the {mine_text} is at the same time as the {other_text} {where}"
    relation = "after" if moment > candidate else "before"
    unit = "minute" if minutes == 1 else "minutes"
    if minutes == 0:
        return f"the {mine_text} is less than a minute {relation} the {other_text} {where}"
    return f"the {mine_text} is {minutes} {unit} {relation} the {other_text} {where}"


def holding(holds: Iterable[Hold], moment: datetime, disruptive: bool) -> Hold | None:
    """The hold that skips a run at `moment`, if any (every hold is active from its creation)."""
    for hold in holds:
        if hold.created_at <= moment < hold.until and (hold.scope == "all" or disruptive):
            return hold
    return None


def one_off_in_past(trigger: Trigger, now: datetime) -> bool:
    return isinstance(trigger, OneOffTrigger) and trigger.at <= now
