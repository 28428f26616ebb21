"""Hand-picked crontimes cases: DST changes, cron's day rule, sparse and impossible schedules."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import pytest

from vintagestory_api.scheduler.crontimes import CronTimes, DstNote, dst_notes

from .cron_reference import simulate

BERLIN = ZoneInfo("Europe/Berlin")
HAVANA = ZoneInfo("America/Havana")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")


def times(expression: str, tz: tzinfo, start: datetime, count: int) -> list[str]:
    """Fire times as local ISO text with offsets, from a naive local (or aware) start."""
    begin = start if start.tzinfo else start.replace(tzinfo=tz)
    return [t.isoformat() for t in CronTimes(expression, tz).iter_after(begin, count)]


def notes(expression: str, tz: ZoneInfo, start: datetime, days: int = 2) -> list[DstNote]:
    begin = start.replace(tzinfo=tz)
    return dst_notes(expression, tz, begin, begin + timedelta(days=days))


# No skipped or doubled days when a DST change shortens or lengthens a day.


def test_daily_midnight_across_berlin_spring() -> None:
    assert times("0 0 * * *", BERLIN, datetime(2026, 3, 28, 12, 0, 30), 3) == [
        "2026-03-29T00:00:00+01:00",
        "2026-03-30T00:00:00+02:00",
        "2026-03-31T00:00:00+02:00",
    ]


def test_daily_midnight_across_new_york_spring() -> None:
    assert times("0 0 * * *", ZoneInfo("America/New_York"), datetime(2026, 3, 7, 12), 3) == [
        "2026-03-08T00:00:00-05:00",
        "2026-03-09T00:00:00-04:00",
        "2026-03-10T00:00:00-04:00",
    ]


def test_daily_midnight_across_sydney_spring() -> None:
    assert times("0 0 * * *", ZoneInfo("Australia/Sydney"), datetime(2026, 10, 3, 12), 3) == [
        "2026-10-04T00:00:00+10:00",
        "2026-10-05T00:00:00+11:00",
        "2026-10-06T00:00:00+11:00",
    ]


def test_monthly_includes_the_first_of_april_in_berlin() -> None:
    assert times("0 0 1 * *", BERLIN, datetime(2026, 3, 2), 2) == [
        "2026-04-01T00:00:00+02:00",
        "2026-05-01T00:00:00+02:00",
    ]


@pytest.mark.parametrize(
    ("zone", "change_day"),
    [
        ("America/Havana", date(2026, 3, 8)),
        ("America/Santiago", date(2026, 9, 6)),
        ("Asia/Beirut", date(2026, 3, 29)),
    ],
)
def test_fixed_time_in_a_skipped_midnight_hour_runs_right_after(
    zone: str, change_day: date
) -> None:
    tz = ZoneInfo(zone)
    start = datetime.combine(change_day - timedelta(days=2), datetime.min.time()).replace(hour=12)
    runs = [datetime.fromisoformat(t) for t in times("30 0 * * *", tz, start, 3)]
    assert [t.date() for t in runs] == [change_day + timedelta(days=d) for d in (-1, 0, 1)]
    assert [t.strftime("%H:%M") for t in runs] == ["00:30", "01:00", "00:30"]


def test_havana_fires_on_7_8_and_9_march() -> None:
    assert times("30 0 * * *", HAVANA, datetime(2026, 3, 6, 12), 3) == [
        "2026-03-07T00:30:00-05:00",
        "2026-03-08T01:00:00-04:00",
        "2026-03-09T00:30:00-04:00",
    ]


# Fixed-time jobs: once after a skipped hour, once in a repeated one.


def test_two_skipped_fixed_times_run_once_after_the_gap() -> None:
    assert times("15,45 2 * * *", BERLIN, datetime(2026, 3, 28, 12), 3) == [
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:15:00+02:00",
        "2026-03-30T02:45:00+02:00",
    ]


def test_skipped_times_merge_with_the_run_right_after_the_gap() -> None:
    assert times("0,30 2,3 * * *", BERLIN, datetime(2026, 3, 28, 12), 3) == [
        "2026-03-29T03:00:00+02:00",
        "2026-03-29T03:30:00+02:00",
        "2026-03-30T02:00:00+02:00",
    ]


def test_fixed_time_in_a_repeated_hour_runs_once() -> None:
    assert times("30 2 * * *", BERLIN, datetime(2026, 10, 24, 12), 2) == [
        "2026-10-25T02:30:00+02:00",
        "2026-10-26T02:30:00+01:00",
    ]


def test_fixed_time_not_rerun_from_inside_the_repeated_hour() -> None:
    inside = datetime(2026, 10, 25, 2, 10, tzinfo=BERLIN, fold=1)  # 02:10+01:00, second copy
    assert times("30 2 * * *", BERLIN, inside, 1) == ["2026-10-26T02:30:00+01:00"]


# Wildcard jobs: both copies of a repeated hour; nothing in a skipped one.


def test_wildcard_runs_in_both_copies_of_the_repeated_hour() -> None:
    assert times("*/30 * * * *", BERLIN, datetime(2026, 10, 25, 1, 40), 5) == [
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:30:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T02:30:00+01:00",
        "2026-10-25T03:00:00+01:00",
    ]


def test_wildcard_from_inside_the_repeated_hour() -> None:
    inside = datetime(2026, 10, 25, 2, 40, tzinfo=BERLIN)  # first copy, 02:40+02:00
    assert times("*/30 * * * *", BERLIN, inside, 3) == [
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T02:30:00+01:00",
        "2026-10-25T03:00:00+01:00",
    ]


def test_wildcard_minutes_in_a_skipped_hour_are_dropped() -> None:
    assert times("*/15 2 * * *", BERLIN, datetime(2026, 3, 28, 12), 5) == [
        "2026-03-30T02:00:00+02:00",
        "2026-03-30T02:15:00+02:00",
        "2026-03-30T02:30:00+02:00",
        "2026-03-30T02:45:00+02:00",
        "2026-03-31T02:00:00+02:00",
    ]


def test_wildcard_hour_in_a_skipped_midnight_is_not_moved() -> None:
    # Every minute of midnight on Sundays: 8 March 2026 has no midnight hour in Havana, and
    # cron runs wildcard jobs only for the minute after the jump (01:00, which does not match).
    assert times("* 0 * * 0", HAVANA, datetime(2026, 3, 7, 12), 1) == ["2026-03-15T00:00:00-04:00"]
    # Hourly on 8 March: the 01:00 run is the first minute after the jump, labelled as such.
    assert times("0 * 8 3 *", HAVANA, datetime(2026, 3, 7, 12), 2) == [
        "2026-03-08T01:00:00-04:00",
        "2026-03-08T02:00:00-04:00",
    ]


# Australia/Lord_Howe changes by 30 minutes.


def test_lord_howe_spring_half_hour_gap() -> None:
    assert times("15 2 * * *", LORD_HOWE, datetime(2026, 10, 3, 12), 2) == [
        "2026-10-04T02:30:00+11:00",
        "2026-10-05T02:15:00+11:00",
    ]
    # The hour after the gap keeps all its wildcard runs.
    assert times("*/20 3 * * *", LORD_HOWE, datetime(2026, 10, 3, 3, 45), 3) == [
        "2026-10-04T03:00:00+11:00",
        "2026-10-04T03:20:00+11:00",
        "2026-10-04T03:40:00+11:00",
    ]


def test_lord_howe_autumn_repeated_half_hour() -> None:
    assert times("45 1 * * *", LORD_HOWE, datetime(2026, 4, 4, 12), 2) == [
        "2026-04-05T01:45:00+11:00",
        "2026-04-06T01:45:00+10:30",
    ]
    assert times("*/20 1 * * *", LORD_HOWE, datetime(2026, 4, 4, 12), 5) == [
        "2026-04-05T01:00:00+11:00",
        "2026-04-05T01:20:00+11:00",
        "2026-04-05T01:40:00+11:00",
        "2026-04-05T01:40:00+10:30",
        "2026-04-06T01:00:00+10:30",
    ]


# Cron's day rule.


def _cron_weekday(day: date) -> int:
    return (day.weekday() + 1) % 7


def test_day_step_is_a_star_so_both_day_fields_must_match() -> None:
    runs = [
        datetime.fromisoformat(t) for t in times("38 12 17 * */2", UTC, datetime(2026, 1, 1), 12)
    ]
    expected = [
        day
        for year in (2026, 2027, 2028)
        for month in range(1, 13)
        if _cron_weekday(day := date(year, month, 17)) in {0, 2, 4, 6}
    ][:12]
    assert [t.date() for t in runs] == expected
    assert all(t.strftime("%H:%M") == "12:38" for t in runs)


def test_restricted_full_week_means_either_day_field() -> None:
    # What the parser makes of a raw 0-6: restricted, so the 17th OR any weekday, every day.
    runs = times("38 12 17 * 0,1,2,3,4,5,6", UTC, datetime(2026, 1, 1), 40)
    assert [datetime.fromisoformat(t).date() for t in runs] == [
        date(2026, 1, 1) + timedelta(days=d) for d in range(40)
    ]


def test_both_day_fields_restricted_fire_on_either() -> None:
    runs = [
        datetime.fromisoformat(t).date() for t in times("0 9 13 * 5", UTC, datetime(2026, 2, 1), 6)
    ]
    fridays = [date(2026, 2, 6), date(2026, 2, 13), date(2026, 2, 20), date(2026, 2, 27)]
    assert runs == [*fridays, date(2026, 3, 6), date(2026, 3, 13)]  # 13 February is a Friday


def test_seven_is_sunday() -> None:
    assert times("0 12 * * 7", UTC, datetime(2026, 1, 1), 2) == times(
        "0 12 * * 0", UTC, datetime(2026, 1, 1), 2
    )


# Sparse and impossible schedules stay cheap.


def test_leap_days_and_their_dst_notes_are_quick() -> None:
    cron = CronTimes("0 0 29 2 *", BERLIN)
    begin = datetime(2026, 1, 1, tzinfo=BERLIN)
    runs = list(cron.iter_after(begin, 50))
    assert len(runs) == 50
    assert all((t.month, t.day, t.hour) == (2, 29, 0) for t in runs)
    assert [t.year for t in runs[:3]] == [2028, 2032, 2036]
    assert 2100 not in {t.year for t in runs}  # not a leap year
    began = time.perf_counter()
    assert cron.dst_notes(begin, runs[-1]) == []  # about 200 years, no change on a 29 February
    assert time.perf_counter() - began < 0.05


@pytest.mark.parametrize("expression", ["0 0 31 2 *", "0 0 30 2 */7", "15 3 31 4,6,9,11 *"])
def test_never_firing_schedule_gives_none_at_once(expression: str) -> None:
    began = time.perf_counter()
    cron = CronTimes(expression, BERLIN)
    assert cron.next_after(datetime(2026, 1, 1, tzinfo=UTC)) is None
    assert list(cron.iter_after(datetime(2026, 1, 1, tzinfo=UTC), 5)) == []
    assert cron.dst_notes(datetime(2026, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC)) == []
    assert time.perf_counter() - began < 0.05


def test_end_of_the_calendar_gives_none() -> None:
    assert CronTimes("0 0 * * *", UTC).next_after(datetime(9999, 12, 31, 1, tzinfo=UTC)) is None


# The API's edges.


def test_next_after_is_strict_and_in_the_schedule_zone() -> None:
    cron = CronTimes("0 12 * * *", BERLIN)
    noon = datetime(2026, 6, 1, 10, tzinfo=UTC)  # 12:00 in Berlin
    assert cron.next_after(noon) == datetime(2026, 6, 2, 12, tzinfo=BERLIN)
    first = cron.next_after(noon - timedelta(microseconds=1))
    assert first == noon
    assert first is not None
    assert first.tzinfo is BERLIN


def test_wildcard_follows_cron() -> None:
    assert CronTimes("*/15 2 * * *", BERLIN).wildcard
    assert CronTimes("0 */2 * * *", BERLIN).wildcard
    assert not CronTimes("0 0 * * *", BERLIN).wildcard
    assert not CronTimes("0,15,30,45 0,1,2 * * *", BERLIN).wildcard


@pytest.mark.parametrize(
    "expression",
    ["0 0 * *", "0-5 * * * *", "60 * * * *", "*/0 * * * *", "0 0 0 * *", "0 0 * 13 *", "L * * * *"],
)
def test_rejects_non_canonical_input(expression: str) -> None:
    with pytest.raises(ValueError, match=r"cron fields|field"):
        CronTimes(expression, UTC)


def test_rejects_a_naive_moment() -> None:
    with pytest.raises(ValueError, match="aware"):
        CronTimes("0 0 * * *", UTC).next_after(datetime(2026, 1, 1))


# DST notes say what the evaluator does.


def test_note_for_a_skipped_midnight_run() -> None:
    assert notes("30 0 * * *", HAVANA, datetime(2026, 3, 7, 12)) == [
        DstNote(
            "DST_SKIPPED",
            date(2026, 3, 8),
            "00:30 does not exist on 2026-03-08 in America/Havana (DST starts); "
            "that run happens at 01:00 instead",
        )
    ]


def test_note_for_two_skipped_fixed_times() -> None:
    assert [n.message for n in notes("15,45 2 * * *", BERLIN, datetime(2026, 3, 28, 12))] == [
        "02:15 and 02:45 do not exist on 2026-03-29 in Europe/Berlin (DST starts); "
        "the job runs once at 03:00 instead"
    ]


def test_note_for_skipped_times_merging_with_the_next_run() -> None:
    assert [n.message for n in notes("0,30 2,3 * * *", BERLIN, datetime(2026, 3, 28, 12))] == [
        "02:00 and 02:30 do not exist on 2026-03-29 in Europe/Berlin (DST starts); "
        "the job runs once at 03:00 instead, together with the regular 03:00 run"
    ]


def test_note_for_dropped_wildcard_runs() -> None:
    assert [n.message for n in notes("*/15 2 * * *", BERLIN, datetime(2026, 3, 28, 12))] == [
        "02:00, 02:15, 02:30 and 02:45 do not exist on 2026-03-29 in Europe/Berlin "
        "(DST starts); those runs are skipped"
    ]


def test_note_for_a_fixed_time_in_a_repeated_hour() -> None:
    assert notes("30 2 * * *", BERLIN, datetime(2026, 10, 24, 12)) == [
        DstNote(
            "DST_REPEATED",
            date(2026, 10, 25),
            "02:30 occurs twice on 2026-10-25 in Europe/Berlin (DST ends); "
            "the job runs once, at the first occurrence",
        )
    ]


def test_note_for_wildcards_in_a_repeated_hour() -> None:
    assert [n.message for n in notes("*/30 * * * *", BERLIN, datetime(2026, 10, 24, 12))] == [
        "02:00 and 02:30 occur twice on 2026-10-25 in Europe/Berlin (DST ends); "
        "the job runs at both occurrences, 1 hour apart"
    ]
    assert [n.message for n in notes("*/20 1 * * *", LORD_HOWE, datetime(2026, 4, 4, 12))] == [
        "01:40 occurs twice on 2026-04-05 in Australia/Lord_Howe (DST ends); "
        "the job runs at both occurrences, 30 minutes apart"
    ]


def test_no_note_without_runs_in_the_changed_hour_or_outside_the_window() -> None:
    assert notes("0 12 * * *", BERLIN, datetime(2026, 3, 28, 12)) == []
    assert notes("30 2 * * 1", BERLIN, datetime(2026, 3, 28, 12)) == []  # 29 March is a Sunday
    assert notes("30 2 * * *", BERLIN, datetime(2026, 3, 29, 4)) == []  # after the change
    assert notes("30 2 * * *", BERLIN, datetime(2026, 3, 20, 12), days=7) == []  # before it


def test_notes_over_a_year_list_each_change() -> None:
    found = notes("30 2 * * *", BERLIN, datetime(2026, 1, 1), days=730)
    assert [(n.code, n.day) for n in found] == [
        ("DST_SKIPPED", date(2026, 3, 29)),
        ("DST_REPEATED", date(2026, 10, 25)),
        ("DST_SKIPPED", date(2027, 3, 28)),
        ("DST_REPEATED", date(2027, 10, 31)),
    ]


# The hand-picked cases agree with the model of cron too.


@pytest.mark.parametrize(
    ("expression", "zone", "start"),
    [
        ("0 0 * * *", "Europe/Berlin", datetime(2026, 3, 28, 12, 0, 30)),
        ("0 0 * * *", "Australia/Sydney", datetime(2026, 10, 3, 12)),
        ("0 0 1 * *", "Europe/Berlin", datetime(2026, 3, 2)),
        ("30 0 * * *", "America/Havana", datetime(2026, 3, 6, 12)),
        ("30 0 * * *", "America/Santiago", datetime(2026, 9, 4, 12)),
        ("30 23 * * *", "Asia/Beirut", datetime(2026, 10, 23, 12)),
        ("15,45 2 * * *", "Europe/Berlin", datetime(2026, 3, 28, 12)),
        ("0,30 2,3 * * *", "Europe/Berlin", datetime(2026, 3, 28, 12)),
        ("30 2 * * *", "Europe/Berlin", datetime(2026, 10, 24, 12)),
        ("*/30 * * * *", "Europe/Berlin", datetime(2026, 10, 25, 1, 40)),
        ("*/15 2 * * *", "Europe/Berlin", datetime(2026, 3, 28, 12)),
        ("* 0 * * 0", "America/Havana", datetime(2026, 3, 7, 12)),
        ("0 * 8 3 *", "America/Havana", datetime(2026, 3, 7, 12)),
        ("*/20 3 * * *", "Australia/Lord_Howe", datetime(2026, 10, 3, 3, 45)),
        ("*/20 1 * * *", "Australia/Lord_Howe", datetime(2026, 4, 4, 12)),
        ("38 12 17 * */2", "UTC", datetime(2026, 1, 1)),
        ("0 0 29 2 *", "Europe/Berlin", datetime(2026, 1, 1)),
    ],
)
def test_agrees_with_the_model(expression: str, zone: str, start: datetime) -> None:
    tz = ZoneInfo(zone)
    begin = start.replace(tzinfo=tz)
    ours = [t.astimezone(UTC) for t in CronTimes(expression, tz).iter_after(begin, 50)]
    assert ours == sorted({run.at for run in simulate(expression, tz, begin, 50).runs})[:50]
