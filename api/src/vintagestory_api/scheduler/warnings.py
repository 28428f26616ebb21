"""Warnings about a schedule: too frequent, or naming local times that a DST change skips or
repeats. Pure code, like `cron.py` whose parsed `CronSpec` it reads."""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from datetime import MAXYEAR, UTC, date, datetime, time, timedelta, tzinfo

from .cron import (
    CronSpec,
    describe_duration,
    describe_interval,
    field_values,
    timezone_name,
)


@dataclass(frozen=True)
class ScheduleWarning:
    code: str
    message: str


def schedule_warnings(
    *,
    interval_seconds: int | None,
    spec: CronSpec | None,
    tz: tzinfo,
    fire_times: list[datetime],
) -> list[ScheduleWarning]:
    """Warnings about a schedule: too frequent, or naming local times a DST change skips or repeats.

    DST is checked on every day from the first to the last of `fire_times` (local dates). Interval
    jobs run on elapsed time, so DST never affects them.
    """
    warnings: list[ScheduleWarning] = []
    if interval_seconds is not None and interval_seconds < 60:
        text = f"runs {describe_interval(interval_seconds)}, more often than once a minute"
        warnings.append(ScheduleWarning("TOO_FREQUENT", text))
    if spec is not None and fire_times:
        local = [_local_date(moment, tz) for moment in fire_times]
        fields = field_values(spec)
        # Like cron, the scheduler runs a job with a fixed minute and hour once in a
        # repeated hour; a wildcard job ('*' or '*/n' there) runs in both copies.
        once = not spec.minute.startswith("*") and not spec.hour.startswith("*")
        for day in transition_days(tz, min(local), max(local)):
            if _day_matches(day, fields, spec.day_or):
                warnings.extend(_dst_day_warnings(day, fields[1], fields[0], tz, once=once))
    return warnings


def transition_days(tz: tzinfo, first: date, last: date) -> list[date]:
    """The local dates from `first` to `last` on which `tz`'s UTC offset changes.

    Bounded by construction: a few dozen offset reads per year of the span, cached per zone and
    year (a zone's rules do not change while the process runs), so even a preview spanning 200
    years (`0 0 29 2 *`, 50 fire times) costs milliseconds once and microseconds after.
    """
    days: list[date] = []
    for year in range(first.year, last.year + 1):
        days.extend(day for day in _year_transitions(tz, year) if first <= day <= last)
    return days


def _midnight_offset(tz: tzinfo, day: date) -> timedelta | None:
    return datetime.combine(day, time(), tzinfo=tz).utcoffset()


@functools.lru_cache(maxsize=4096)
def _year_transitions(tz: tzinfo, year: int) -> tuple[date, ...]:
    # Samples twice a month (no zone changes its offset twice within half a month), then a
    # bisection by day between two samples that differ: the day found starts with one offset
    # and the next day with another, which is what `_offset_changes` tests.
    samples = [date(year, month, half) for month in range(1, 13) for half in (1, 16)]
    if year < MAXYEAR:
        samples.append(date(year + 1, 1, 1))
    found: list[date] = []
    for low, high in itertools.pairwise(samples):
        offset = _midnight_offset(tz, low)
        if _midnight_offset(tz, high) == offset:
            continue
        while (high - low).days > 1:
            middle = low + timedelta(days=(high - low).days // 2)
            if _midnight_offset(tz, middle) == offset:
                low = middle
            else:
                high = middle
        found.append(low)
    return tuple(found)


def _local_date(moment: datetime, tz: tzinfo) -> date:
    # A naive fire time is taken as already being local wall time.
    return (moment if moment.tzinfo is None else moment.astimezone(tz)).date()


def _offset_changes(day: date, tz: tzinfo) -> bool:
    start = datetime.combine(day, time(), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=tz)
    return start.utcoffset() != end.utcoffset()


def _day_matches(day: date, fields: list[frozenset[int]], day_or: bool) -> bool:
    _, _, days, months, weekdays = fields
    if day.month not in months:
        return False
    by_day = day.day in days
    by_weekday = (day.weekday() + 1) % 7 in weekdays
    return (by_day or by_weekday) if day_or else (by_day and by_weekday)


def _dst_day_warnings(
    day: date, hours: frozenset[int], minutes: frozenset[int], tz: tzinfo, *, once: bool
) -> list[ScheduleWarning]:
    """Warnings for the cron's wall times on a day when the UTC offset changes.

    The wording follows what the scheduler does, checked by experiment with APScheduler 3.11: a
    skipped wall time fires the length of the gap later (02:30 becomes 03:30, merging with a run
    already due then); a repeated one fires at both occurrences unless `once`.
    """
    skipped: list[tuple[datetime, datetime]] = []
    repeated: list[datetime] = []
    shift = timedelta()
    label = ""
    for hour in sorted(hours):
        for minute in sorted(minutes):
            wall = datetime.combine(day, time(hour, minute))
            first = wall.replace(tzinfo=tz)
            second = first.replace(fold=1)
            before, after = first.utcoffset(), second.utcoffset()
            if before is None or after is None or before == after:
                continue
            landed = first.astimezone(UTC).astimezone(tz).replace(tzinfo=None)
            dst_before, dst_after = first.dst() or timedelta(), second.dst() or timedelta()
            if landed != wall:
                skipped.append((wall, landed))
                shift = landed - wall
                label = "DST starts" if dst_after > dst_before else "clocks go forward"
            else:
                repeated.append(wall)
                shift = before - after
                label = "DST ends" if dst_before > dst_after else "clocks go back"
    gap = describe_duration(int(abs(shift).total_seconds()))
    where = f"on {day} in {timezone_name(tz)} ({label})"
    if skipped:
        walls, moved = _times([w for w, _ in skipped]), _times([m for _, m in skipped])
        if len(skipped) == 1:
            message = f"{walls} does not exist {where}; that run happens at {moved} instead"
        else:
            message = (
                f"{walls} do not exist {where}; those runs move {gap} later ({moved}), "
                "merging with any run already due then"
            )
        return [ScheduleWarning("DST_SKIPPED", message)]
    if repeated:
        verb = "occurs" if len(repeated) == 1 else "occur"
        if once:
            outcome = "the job runs once, at the first occurrence"
        else:
            outcome = f"the job runs at both occurrences, {gap} apart"
        message = f"{_times(repeated)} {verb} twice {where}; {outcome}"
        return [ScheduleWarning("DST_REPEATED", message)]
    return []


def _times(walls: list[datetime]) -> str:
    labels = [wall.strftime("%H:%M") for wall in walls]
    if len(labels) > 4:
        return f"the {len(labels)} times from {labels[0]} to {labels[-1]}"
    if len(labels) == 1:
        return labels[0]
    return f"{', '.join(labels[:-1])} and {labels[-1]}"
