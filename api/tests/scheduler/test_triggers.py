"""Fire times as the scheduler computes them: cron weekdays, DST transitions, day-of-month OR."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from vintagestory_api.scheduler.specs import local_time, parse_schedule
from vintagestory_api.scheduler.triggers import fire_times

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def local_fires(cron: str, tz: ZoneInfo, start: datetime, count: int) -> list[datetime]:
    schedule = parse_schedule(cron=cron, timezone=str(tz), default_tz=tz)
    return [local_time(t, tz) for t in fire_times(schedule, start.replace(tzinfo=tz), count)]


@pytest.mark.parametrize("cron", ["0 4 * * 0", "0 4 * * 7", "0 4 * * sun", "0 4 * * SUN"])
def test_weekday_zero_and_seven_are_sunday(cron: str) -> None:
    fires = local_fires(cron, BERLIN, datetime(2024, 5, 1), 4)
    assert [f.strftime("%A %H:%M") for f in fires] == ["Sunday 04:00"] * 4
    assert fires[0].date() == date(2024, 5, 5)


def test_both_day_fields_restricted_fire_when_either_matches() -> None:
    # Standard cron: the 1st of the month OR any Monday.
    fires = local_fires("0 12 1 * mon", BERLIN, datetime(2024, 4, 25), 4)
    assert [f.date() for f in fires] == [
        date(2024, 4, 29),  # Monday
        date(2024, 5, 1),  # the 1st (a Wednesday)
        date(2024, 5, 6),
        date(2024, 5, 13),
    ]


@pytest.mark.parametrize(
    ("tz", "start", "cron"),
    [
        (BERLIN, datetime(2024, 3, 28), "30 2 * * *"),  # spring forward: 02:30 does not exist
        (BERLIN, datetime(2024, 3, 28), "0 2 * * *"),
        (BERLIN, datetime(2024, 10, 25), "30 2 * * *"),  # fall back: 02:30 happens twice
        (NEW_YORK, datetime(2024, 3, 8), "30 2 * * *"),
        (NEW_YORK, datetime(2024, 11, 1), "30 1 * * *"),
        (NEW_YORK, datetime(2024, 11, 1), "0 1 * * *"),
    ],
)
def test_daily_job_fires_once_every_day_across_dst_changes(
    tz: ZoneInfo, start: datetime, cron: str
) -> None:
    fires = local_fires(cron, tz, start, 8)

    days = [f.date() for f in fires]
    assert days == [start.date() + timedelta(days=n) for n in range(8)], fires
    assert fires == sorted(fires)


def test_a_skipped_local_time_runs_just_after_the_gap_and_is_shown_as_real_wall_time() -> None:
    fires = local_fires("30 2 * * *", BERLIN, datetime(2024, 3, 31), 1)
    # As cron: right after the change (03:00), labelled with the offset really in force.
    assert fires[0].isoformat() == "2024-03-31T03:00:00+02:00"


def test_wildcard_hour_jobs_fire_in_both_copies_of_a_repeated_hour() -> None:
    fires = local_fires("*/30 * * * *", NEW_YORK, datetime(2024, 11, 3, 0, 0), 8)
    utc_gaps = {b.astimezone(UTC) - a.astimezone(UTC) for a, b in itertools.pairwise(fires)}
    assert utc_gaps == {timedelta(minutes=30)}
    assert [f.strftime("%H:%M%z") for f in fires[2:6]] == [
        "01:00-0400",
        "01:30-0400",
        "01:00-0500",
        "01:30-0500",
    ]


def test_interval_runs_on_elapsed_time_across_dst() -> None:
    schedule = parse_schedule(interval_seconds=3600, default_tz=BERLIN)
    start = datetime(2024, 3, 31, 0, 30, tzinfo=BERLIN)
    # Aware datetimes sharing a tzinfo subtract as wall times; compare in UTC.
    fires = [t.astimezone(UTC) for t in fire_times(schedule, start, 4)]
    gaps = {b - a for a, b in itertools.pairwise(fires)}
    assert gaps == {timedelta(hours=1)}
    assert fires[0] - start.astimezone(UTC) == timedelta(hours=1)
