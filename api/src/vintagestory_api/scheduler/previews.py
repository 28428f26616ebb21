"""Schedule previews: what a schedule would do, computed without scheduling anything."""

from __future__ import annotations

from datetime import datetime, tzinfo

from .cron import timezone_name
from .errors import InvalidSchedule
from .schemas import PREVIEW_START_MAX, PREVIEW_START_MIN, ScheduleWarningInfo, TriggerPreview
from .specs import local_time, parse_schedule
from .triggers import fire_times
from .warnings import schedule_warnings


def preview_schedule(
    *,
    interval_seconds: int | None = None,
    cron: str | None = None,
    timezone: str | None = None,
    count: int = 5,
    start: datetime | None = None,
    default_tz: tzinfo,
) -> TriggerPreview:
    """The next `count` fire times after `start` (default now; naive means in the timezone)."""
    schedule = parse_schedule(
        interval_seconds=interval_seconds, cron=cron, timezone=timezone, default_tz=default_tz
    )
    tz = schedule.tz
    begin = datetime.now(tz) if start is None else start
    try:
        begin = begin.replace(tzinfo=tz) if begin.tzinfo is None else begin.astimezone(tz)
        in_range = PREVIEW_START_MIN <= begin <= PREVIEW_START_MAX
    except OverflowError:  # year 1 or 9999 shifted out of what a datetime holds
        in_range = False
    if not in_range:
        raise InvalidSchedule(
            "start", "must be between 1970-01-01T00:00:00Z and 9000-01-01T00:00:00Z"
        )
    times = fire_times(schedule, begin, count)
    warnings = schedule_warnings(
        interval_seconds=schedule.interval_seconds,
        spec=schedule.cron,
        tz=tz,
        fire_times=times,
        since=begin,
    )
    if schedule.cron is not None:
        trigger_type, normalized = "cron", schedule.cron.normalized
    else:
        trigger_type, normalized = "interval", f"every {schedule.interval_seconds} seconds"
    return TriggerPreview(
        trigger_type=trigger_type,
        normalized=normalized,
        description=schedule.describe(),
        timezone=timezone_name(tz),
        next_run_times=[local_time(t, tz) for t in times],
        warnings=[ScheduleWarningInfo(code=w.code, message=w.message) for w in warnings],
    )
