"""Warnings about a schedule: too frequent, or what a DST change does to its runs. Pure code;
the DST notes come from `crontimes.CronTimes`, the evaluator the scheduler fires by, so a
warning never describes a run that does not happen."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from .cron import CronSpec, describe_interval
from .crontimes import CronTimes


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
    since: datetime | None = None,
) -> list[ScheduleWarning]:
    """Warnings about a schedule: too frequent, or what DST changes do to its runs.

    DST is looked at from `since` (default: a day before the first fire time) to the last of
    `fire_times`: a change before the first listed run can already have dropped or moved one.
    Interval jobs run on elapsed time, so DST never affects them.
    """
    warnings: list[ScheduleWarning] = []
    if interval_seconds is not None and interval_seconds < 60:
        text = f"runs {describe_interval(interval_seconds)}, more often than once a minute"
        warnings.append(ScheduleWarning("TOO_FREQUENT", text))
    if spec is not None and fire_times:
        aware = [t if t.tzinfo is not None else t.replace(tzinfo=tz) for t in fire_times]
        start = since if since is not None else min(aware) - timedelta(days=1)
        notes = CronTimes(spec.canonical, tz).dst_notes(start, max(aware))
        warnings.extend(ScheduleWarning(note.code, note.message) for note in notes)
    return warnings
