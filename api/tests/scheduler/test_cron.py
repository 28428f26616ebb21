from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vintagestory_api.scheduler.cron import (
    CronSpec,
    describe_cron,
    describe_interval,
    host_timezone,
    parse_crontab,
    parse_timezone,
    timezone_name,
    validate_interval,
)
from vintagestory_api.scheduler.errors import InvalidSchedule
from vintagestory_api.scheduler.warnings import ScheduleWarning, schedule_warnings

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def _reason(excinfo: pytest.ExceptionInfo[InvalidSchedule]) -> str:
    return excinfo.value.reason


@pytest.mark.parametrize(
    ("weekday", "expected"),
    [
        ("0", "sun"),
        ("7", "sun"),
        ("sun", "sun"),
        ("SUN", "sun"),
        ("Mon", "mon"),
        ("1", "mon"),
        ("6", "sat"),
        ("1-5", "mon-fri"),
        ("mon-fri", "mon-fri"),
        ("5-7", "fri-sun"),
        ("fri-sun", "fri-sun"),
        ("6-7", "sat,sun"),
        ("0-2", "mon,tue,sun"),
        ("sun-tue", "mon,tue,sun"),
        # A leading '*' is kept: cron's day rule depends on it.
        ("*/2", "*/2"),
        ("1-7/2", "mon,wed,fri,sun"),
        ("0,7", "sun"),
        ("sat,sun,mon", "mon,sat,sun"),
        ("1,3,5", "mon,wed,fri"),
        # Every day, but written as a range: not '*' for cron's day rule.
        ("0-6", "mon-sun"),
        ("0-7", "mon-sun"),
        ("*", "*"),
        ("*/1", "*"),
    ],
)
def test_day_of_week_is_translated_to_names(weekday: str, expected: str) -> None:
    spec = parse_crontab(f"0 4 * * {weekday}")
    assert spec.day_of_week == expected
    assert spec.normalized == f"0 4 * * {expected}"


@pytest.mark.parametrize("weekday", ["0", "1-5", "5-7", "0-2", "1-7/2", "sat,sun,mon"])
def test_day_of_week_never_leaves_as_digits(weekday: str) -> None:
    assert not any(char.isdigit() for char in parse_crontab(f"* * * * {weekday}").day_of_week)


@pytest.mark.parametrize(
    ("month", "expected"),
    [
        ("jan", "1"),
        ("DEC", "12"),
        ("jan-mar", "1-3"),
        ("jan-mar,dec", "1-3,12"),
        ("*/3", "*/3"),
        ("1,jul", "1,7"),
        ("1-12", "1-12"),
    ],
)
def test_month_names_become_numbers(month: str, expected: str) -> None:
    assert parse_crontab(f"0 0 1 {month} *").month == expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("*/15 * * * *", ("*/15", "*", "*", "*", "*")),
        ("*/05 */5 */2 */3 *", ("*/5", "*/5", "*/2", "*/3", "*")),
        # A list or range that happens to be periodic is not a wildcard (see the DST tests).
        ("0,15,30,45 * * * *", ("0-45/15", "*", "*", "*", "*")),
        ("0-59/15 * * * *", ("0-45/15", "*", "*", "*", "*")),
        ("0/15 * * * *", ("0-45/15", "*", "*", "*", "*")),
        ("0-30/10 9-17 1,15 * *", ("0-30/10", "9-17", "1,15", "*", "*")),
        ("5,6 0 1-31 * *", ("5,6", "0", "1-31", "*", "*")),
        ("1,2,3,7 9,10,11 * * *", ("1-3,7", "9-11", "*", "*", "*")),
        # A step wider than the field selects its first value, and stays a wildcard.
        ("*/60 */24 */31 */12 *", ("*/60", "*/24", "*/31", "*/12", "*")),
        ("*/59 * * * *", ("*/59", "*", "*", "*", "*")),
        ("  0   4\t* * 0  ", ("0", "4", "*", "*", "sun")),
    ],
)
def test_fields_are_canonical(expr: str, expected: tuple[str, ...]) -> None:
    spec = parse_crontab(expr)
    assert (spec.minute, spec.hour, spec.day, spec.month, spec.day_of_week) == expected
    assert spec.normalized == " ".join(expected)


@pytest.mark.parametrize(
    ("macro", "normalized"),
    [
        ("@hourly", "0 * * * *"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@weekly", "0 0 * * sun"),
        ("@monthly", "0 0 1 * *"),
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@DAILY", "0 0 * * *"),
    ],
)
def test_macros_are_translated(macro: str, normalized: str) -> None:
    assert parse_crontab(macro).normalized == normalized


@pytest.mark.parametrize(
    ("expr", "day_or"),
    [
        ("0 0 1 * mon", True),
        ("0 0 13 * fri", True),
        ("0 0 1 * *", False),
        ("0 0 * * mon", False),
        # As in cron: a field only counts as '*' when it is written with a leading '*'.
        ("0 0 1-31 * mon", True),
        ("0 0 1 * 0-7", True),
        ("38 12 17 * */2", False),
        ("0 0 */2 * mon", False),
        ("0 0 * * *", False),
    ],
)
def test_day_or_only_when_both_day_fields_are_restricted(expr: str, day_or: bool) -> None:
    assert parse_crontab(expr).day_or is day_or


@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        ("", "cron expression is empty"),
        ("   ", "cron expression is empty"),
        ("* * * *", "expected 5 fields (minute hour day month weekday), got 4"),
        ("0 0 * * * *", "expected 5 fields (minute hour day month weekday), got 6"),
        ("60 * * * *", "minute field '60' is out of range 0-59"),
        ("* 25 * * *", "hour field '25' is out of range 0-23"),
        ("* * 0 * *", "day-of-month field '0' is out of range 1-31"),
        ("* * 32 * *", "day-of-month field '32' is out of range 1-31"),
        ("* * * 13 *", "month field '13' is out of range 1-12"),
        ("* * * * 8", "day-of-week field '8' is out of range 0-7"),
        ("* * * * fun", "day-of-week field 'fun' is not a weekday name or number 0-7"),
        ("* * * foo *", "month field 'foo' is not a month name or number 1-12"),
        ("x * * * *", "minute field 'x' is not a number 0-59"),
        ("* mon * * *", "hour field 'mon' is not a number 0-23"),
        ("*/0 * * * *", "minute field '*/0' has step 0; a step must be 1 or more"),
        ("* */x * * *", "hour field '*/x' has step 'x', not a whole number"),
        ("* 5-2 * * *", "hour field '5-2' is a reversed range; write it low-high"),
        ("* * * * 5-0", "day-of-week field '5-0' is a reversed range; write it low-high"),
        ("1,,2 * * * *", "minute field '1,,2' has an empty list item"),
        ("-5 * * * *", "minute field has a list item or range with a missing number"),
        ("@reboot", "unknown macro '@reboot'; supported: @hourly, @daily, @midnight,"),
    ],
)
def test_invalid_cron_names_the_field(expr: str, reason: str) -> None:
    with pytest.raises(InvalidSchedule) as excinfo:
        parse_crontab(expr, field="cron")
    assert _reason(excinfo).startswith(reason)
    assert excinfo.value.field == "cron"
    assert excinfo.value.code == "INVALID_SCHEDULE"


@pytest.mark.parametrize(
    ("expr", "mentions"),
    [
        ("0 0 ? * mon", "'?'"),
        ("0 0 * * ?", "'?'"),
        ("0 0 L * *", "'L' or 'W'"),
        ("0 0 15W * *", "'L' or 'W'"),
        ("0 0 LW * *", "'L' or 'W'"),
        ("0 0 * * 5L", "'L' or 'W'"),
        ("0 0 * * 5#3", "'#'"),
    ],
)
def test_quartz_extensions_are_rejected_clearly(expr: str, mentions: str) -> None:
    with pytest.raises(InvalidSchedule) as excinfo:
        parse_crontab(expr)
    assert mentions in _reason(excinfo)
    assert "Quartz" in _reason(excinfo)


def test_invalid_cron_uses_the_given_field_name() -> None:
    with pytest.raises(InvalidSchedule) as excinfo:
        parse_crontab("99 * * * *", field="schedule.cron")
    assert excinfo.value.field == "schedule.cron"
    assert str(excinfo.value).startswith("schedule.cron: minute field")


def test_overlong_cron_is_rejected() -> None:
    with pytest.raises(InvalidSchedule, match="longer than"):
        parse_crontab("1," * 200 + "2 * * * *")


def test_unicode_digits_are_not_numbers() -> None:
    with pytest.raises(InvalidSchedule, match="minute field"):
        parse_crontab("\u00b2 * * * *")


@pytest.mark.parametrize(
    ("expr", "text"),
    [
        ("0 4 * * 0", "At 04:00 AM, only on Sunday (Europe/Berlin)"),
        ("0 4 * * 7", "At 04:00 AM, only on Sunday (Europe/Berlin)"),
        ("0 4 * * sun", "At 04:00 AM, only on Sunday (Europe/Berlin)"),
        ("0 4 * * 1-5", "At 04:00 AM, Monday through Friday (Europe/Berlin)"),
        ("0 4 * * 5-7", "At 04:00 AM, Friday through Sunday (Europe/Berlin)"),
        ("0 4 * * 0-2", "At 04:00 AM, only on Monday, Tuesday, and Sunday (Europe/Berlin)"),
        ("*/15 * * * *", "Every 15 minutes (Europe/Berlin)"),
        ("* * * * *", "Every minute (Europe/Berlin)"),
        ("0 0 1 1 *", "At 12:00 AM, on day 1 of the month, only in January (Europe/Berlin)"),
        ("0 4 13 * fri", "At 04:00 AM, on day 13 of the month, or on Friday (Europe/Berlin)"),
    ],
)
def test_describe_cron(expr: str, text: str) -> None:
    assert describe_cron(parse_crontab(expr), "Europe/Berlin") == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (1, "every second"),
        (10, "every 10 seconds"),
        (60, "every minute"),
        (90, "every 1 minute 30 seconds"),
        (3600, "every hour"),
        (5400, "every 1 hour 30 minutes"),
        (14400, "every 4 hours"),
        (86400, "every day"),
        (604800, "every 7 days"),
        (2_678_400, "every 31 days"),
    ],
)
def test_describe_interval(seconds: int, text: str) -> None:
    assert describe_interval(seconds) == text


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, 1), (60, 60), (14400.0, 14400), (2_678_400, 2_678_400)],
)
def test_valid_intervals(value: object, expected: int) -> None:
    result = validate_interval(value)
    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (0, "must be at least 1 second, got 0"),
        (-1, "must be at least 1 second, got -1"),
        (True, "must be a whole number of seconds, got True"),
        (False, "must be a whole number of seconds, got False"),
        (1.5, "must be a whole number of seconds, got 1.5"),
        (float("nan"), "must be a whole number of seconds"),
        (float("inf"), "must be a whole number of seconds"),
        ("x", "must be a whole number of seconds, got 'x'"),
        ("60", "must be a whole number of seconds, got '60'"),
        (None, "must be a whole number of seconds, got None"),
        (2_678_401, "must be at most 2678400 seconds (31 days), got 2678401"),
        (10**30, "must be at most 2678400 seconds (31 days)"),
    ],
)
def test_invalid_intervals(value: object, reason: str) -> None:
    with pytest.raises(InvalidSchedule) as excinfo:
        validate_interval(value, field="interval_seconds")
    assert excinfo.value.field == "interval_seconds"
    assert _reason(excinfo).startswith(reason)


def test_timezone_defaults_when_missing() -> None:
    assert parse_timezone(None, BERLIN) is BERLIN
    assert parse_timezone("", BERLIN) is BERLIN


@pytest.mark.parametrize("name", ["Europe/Berlin", "America/New_York", "UTC", "Etc/GMT+5"])
def test_iana_timezone_names_resolve(name: str) -> None:
    tz = parse_timezone(name, UTC)
    assert isinstance(tz, ZoneInfo)
    assert timezone_name(tz) == name


def test_unknown_timezone_is_invalid_schedule() -> None:
    with pytest.raises(InvalidSchedule) as excinfo:
        parse_timezone("Mars/Base", UTC, field="timezone")
    assert excinfo.value.field == "timezone"
    assert _reason(excinfo) == "unknown IANA timezone 'Mars/Base'"


@pytest.mark.parametrize(
    "name",
    [
        "../etc/passwd",
        "/etc/localtime",
        "Europe/../Europe/Berlin",
        "Europe",
        "Europe/",
        "nul\x00byte",
        "Europe\\Berlin",
        "a" * 300,
        "Ünïcode/Zone",
    ],
)
def test_path_like_or_odd_timezone_names_are_rejected(name: str) -> None:
    with pytest.raises(InvalidSchedule) as excinfo:
        parse_timezone(name, UTC)
    assert excinfo.value.field == "timezone"


def test_timezone_name_falls_back_to_str() -> None:
    assert timezone_name(BERLIN) == "Europe/Berlin"
    assert timezone_name(UTC) == "UTC"
    assert timezone_name(timezone(timedelta(hours=2))) == "UTC+02:00"


def test_host_timezone_is_a_usable_tzinfo() -> None:
    tz = host_timezone()
    assert isinstance(tz, tzinfo)
    assert datetime(2027, 1, 1, tzinfo=tz).utcoffset() is not None
    assert timezone_name(tz)


def _warnings(expr: str, tz: ZoneInfo, first: datetime, last: datetime) -> list[ScheduleWarning]:
    return schedule_warnings(
        interval_seconds=None, spec=parse_crontab(expr), tz=tz, fire_times=[first, last]
    )


def test_berlin_spring_forward_skips_0230() -> None:
    found = _warnings(
        "30 2 * * *", BERLIN, datetime(2027, 3, 27, 2, 30, tzinfo=BERLIN), datetime(2027, 3, 30)
    )
    assert found == [
        ScheduleWarning(
            "DST_SKIPPED",
            "02:30 does not exist on 2027-03-28 in Europe/Berlin (DST starts); "
            "that run happens at 03:00 instead",
        )
    ]


def test_new_york_spring_forward_skips_0230() -> None:
    found = _warnings(
        "30 2 * * *", NEW_YORK, datetime(2027, 3, 13, tzinfo=NEW_YORK), datetime(2027, 3, 16)
    )
    assert [w.code for w in found] == ["DST_SKIPPED"]
    assert "02:30 does not exist on 2027-03-14 in America/New_York (DST starts)" in (
        found[0].message
    )


def test_berlin_fall_back_repeats_0230() -> None:
    found = _warnings(
        "30 2 * * *", BERLIN, datetime(2027, 10, 30, tzinfo=BERLIN), datetime(2027, 11, 2)
    )
    assert found == [
        ScheduleWarning(
            "DST_REPEATED",
            "02:30 occurs twice on 2027-10-31 in Europe/Berlin (DST ends); "
            "the job runs once, at the first occurrence",
        )
    ]


def test_new_york_fall_back_repeats_0130() -> None:
    found = _warnings(
        "30 1 * * *", NEW_YORK, datetime(2027, 11, 6, tzinfo=NEW_YORK), datetime(2027, 11, 8)
    )
    assert [w.code for w in found] == ["DST_REPEATED"]
    assert found[0].message.startswith(
        "01:30 occurs twice on 2027-11-07 in America/New_York (DST ends)"
    )


def test_many_skipped_times_are_summarised_in_one_warning() -> None:
    found = _warnings(
        "*/15 * * * *", BERLIN, datetime(2027, 3, 28, tzinfo=BERLIN), datetime(2027, 3, 28, 5)
    )
    assert found == [
        ScheduleWarning(
            "DST_SKIPPED",
            # A wildcard job: as cron does, the runs of the skipped hour are dropped.
            "02:00, 02:15, 02:30 and 02:45 do not exist on 2027-03-28 in Europe/Berlin "
            "(DST starts); those runs are skipped",
        )
    ]
    every_minute = _warnings(
        "* * * * *", BERLIN, datetime(2027, 3, 28, tzinfo=BERLIN), datetime(2027, 3, 28, 5)
    )
    assert every_minute[0].message.startswith("the 60 times from 02:00 to 02:59 do not exist")


def test_hourly_cron_repeats_the_hour_on_fall_back() -> None:
    found = _warnings(
        "0 * * * *", NEW_YORK, datetime(2027, 11, 7, tzinfo=NEW_YORK), datetime(2027, 11, 7, 5)
    )
    assert found == [
        ScheduleWarning(
            "DST_REPEATED",
            "01:00 occurs twice on 2027-11-07 in America/New_York (DST ends); "
            "the job runs at both occurrences, 1 hour apart",
        )
    ]


def test_fixed_times_in_a_repeated_hour_run_once_each() -> None:
    found = _warnings(
        "0,30 1 * * *", NEW_YORK, datetime(2027, 11, 7, tzinfo=NEW_YORK), datetime(2027, 11, 8)
    )
    assert [w.message for w in found] == [
        "01:00 and 01:30 occur twice on 2027-11-07 in America/New_York (DST ends); "
        "each runs once, at the first occurrence"
    ]


def test_wildcard_minutes_in_a_repeated_hour_run_twice() -> None:
    found = _warnings(
        "*/30 2 * * *", BERLIN, datetime(2027, 10, 31, tzinfo=BERLIN), datetime(2027, 11, 1)
    )
    assert [w.message for w in found] == [
        "02:00 and 02:30 occur twice on 2027-10-31 in Europe/Berlin (DST ends); "
        "the job runs at both occurrences, 1 hour apart"
    ]


@pytest.mark.parametrize(
    "expr",
    [
        "30 3 * * *",  # 03:30 exists on the spring day in Berlin
        "30 2 * * mon",  # the spring change is on a Sunday
        "30 2 1 * *",  # and not on the 1st
        "30 2 * 4 *",  # nor in April
    ],
)
def test_no_dst_warning_when_the_cron_misses_the_change(expr: str) -> None:
    assert (
        _warnings(expr, BERLIN, datetime(2027, 3, 26, tzinfo=BERLIN), datetime(2027, 3, 30)) == []
    )


def test_day_or_cron_matching_only_by_weekday_still_warns() -> None:
    # Standard cron fires on the 1st OR on Sundays; the spring change is on a Sunday.
    found = _warnings(
        "30 2 1 * sun", BERLIN, datetime(2027, 3, 26, tzinfo=BERLIN), datetime(2027, 3, 30)
    )
    assert [w.code for w in found] == ["DST_SKIPPED"]


def test_dst_warnings_only_within_the_span_of_fire_times() -> None:
    assert _warnings("30 2 * * *", BERLIN, datetime(2027, 4, 1), datetime(2027, 4, 5)) == []
    assert schedule_warnings(
        interval_seconds=None, spec=parse_crontab("30 2 * * *"), tz=BERLIN, fire_times=[]
    ) == ([])


def test_spring_and_fall_in_one_span_give_both_warnings_in_date_order() -> None:
    found = _warnings(
        "30 2 * * *", BERLIN, datetime(2027, 1, 1, tzinfo=BERLIN), datetime(2027, 12, 31)
    )
    assert [w.code for w in found] == ["DST_SKIPPED", "DST_REPEATED"]


def test_fixed_offset_zone_has_no_dst_warnings() -> None:
    assert (
        schedule_warnings(
            interval_seconds=None,
            spec=parse_crontab("30 2 * * *"),
            tz=UTC,
            fire_times=[datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 12, 31, tzinfo=UTC)],
        )
        == []
    )


@pytest.mark.parametrize(("seconds", "warned"), [(1, True), (59, True), (60, False), (3600, False)])
def test_intervals_under_a_minute_are_too_frequent(seconds: int, warned: bool) -> None:
    found = schedule_warnings(
        interval_seconds=seconds,
        spec=None,
        tz=BERLIN,
        fire_times=[datetime(2027, 3, 28, tzinfo=BERLIN), datetime(2027, 10, 31, tzinfo=BERLIN)],
    )
    assert [w.code for w in found] == (["TOO_FREQUENT"] if warned else [])


def test_too_frequent_message_names_the_interval() -> None:
    (warning,) = schedule_warnings(interval_seconds=10, spec=None, tz=UTC, fire_times=[])
    assert warning == ScheduleWarning(
        "TOO_FREQUENT", "runs every 10 seconds, more often than once a minute"
    )


def test_every_minute_cron_is_not_too_frequent() -> None:
    spec = parse_crontab("* * * * *")
    assert schedule_warnings(interval_seconds=None, spec=spec, tz=UTC, fire_times=[]) == []


def _valid_term(low: int, high: int, names: tuple[str, ...] = ()) -> st.SearchStrategy[str]:
    """Terms that standard cron accepts for a field from low to high."""
    value = st.integers(low, high)
    label = value.map(str) | (st.sampled_from(names) if names else value.map(str))
    pair = st.tuples(value, value).map(sorted)
    step = st.integers(1, high + 1).map(str)
    return st.one_of(
        st.just("*"),
        label,
        pair.map(lambda p: f"{p[0]}-{p[1]}"),
        step.map(lambda n: f"*/{n}"),
        st.tuples(pair, step).map(lambda t: f"{t[0][0]}-{t[0][1]}/{t[1]}"),
        st.tuples(value, step).map(lambda t: f"{t[0]}/{t[1]}"),
    )


def _cron_list(terms: list[str]) -> str:
    # A list led by '*' ('*/5,7') sets cron's star flag over other values; we refuse those
    # (they can be written without the '*'), so a '*' term stands alone here.
    return terms[0] if terms[0].startswith("*") else ",".join(terms)


_VALID_EXPR = st.tuples(
    *(
        st.lists(term, min_size=1, max_size=3).map(_cron_list)
        for term in (
            _valid_term(0, 59),
            _valid_term(0, 23),
            _valid_term(1, 31),
            _valid_term(1, 12, ("jan", "FEB", "jun", "Dec")),
            _valid_term(0, 7, ("sun", "Mon", "WED", "sat")),
        )
    )
).map(" ".join)
_NOISE_TERM = st.one_of(
    st.integers(-5, 70).map(str),
    st.sampled_from(["*", "sun", "jan", "foo", "?", "L", "15W", "5#2", "", "-", "/", "1-", "*/"]),
)
_NOISE_FIELD = st.lists(
    st.tuples(_NOISE_TERM, st.sampled_from(["", "-", "/"]), _NOISE_TERM).map("".join),
    min_size=1,
    max_size=3,
).map(",".join)
_EXPR = st.one_of(
    _VALID_EXPR,
    st.lists(_NOISE_FIELD, min_size=0, max_size=7).map(" ".join),
    st.text(max_size=40),
)


def _never_fires(expr: str) -> bool:
    try:
        parse_crontab(expr)
    except InvalidSchedule as exc:
        return "never fires" in exc.message
    return False


@settings(max_examples=300, deadline=None)
@given(_VALID_EXPR)
def test_valid_expressions_parse(expr: str) -> None:
    if _never_fires(expr):
        # Valid terms can still combine into days no chosen month has (30 in February only):
        # refused as a schedule that never fires, the one refusal such an expression may get.
        with pytest.raises(InvalidSchedule, match="never fires"):
            parse_crontab(expr)
        return
    spec = parse_crontab(expr)
    assert parse_crontab(spec.normalized) == spec
    # Weekdays as names; a '*/n' step keeps its number.
    assert spec.day_of_week.startswith("*") or not any(c.isdigit() for c in spec.day_of_week)
    assert describe_cron(spec, "UTC").endswith("(UTC)")


@settings(max_examples=400, deadline=None)
@given(_EXPR)
def test_any_expression_parses_or_raises_invalid_schedule(expr: str) -> None:
    try:
        spec = parse_crontab(expr)
    except InvalidSchedule as error:
        rejected: InvalidSchedule | None = error
    else:
        rejected = None
    if rejected is not None:
        assert rejected.field == "cron"
        assert rejected.reason
        return
    # A parsed spec is canonical: its normalized text parses back to the same spec, never
    # holds weekday digits, and has a description.
    assert parse_crontab(spec.normalized) == spec
    # Weekdays as names; a '*/n' step keeps its number.
    assert spec.day_of_week.startswith("*") or not any(c.isdigit() for c in spec.day_of_week)
    assert describe_cron(spec, "UTC").endswith("(UTC)")


_VALID_FIELDS = st.tuples(
    st.sets(st.integers(0, 59), min_size=1),
    st.sets(st.integers(0, 23), min_size=1),
    st.sets(st.integers(1, 31), min_size=1),
    st.sets(st.integers(1, 12), min_size=1),
    st.sets(st.integers(0, 7), min_size=1),
)


@settings(max_examples=100, deadline=None)
@given(_VALID_FIELDS)
def test_lists_keep_their_meaning_through_normalization(
    fields: tuple[set[int], set[int], set[int], set[int], set[int]],
) -> None:
    expr = " ".join(",".join(str(v) for v in sorted(values)) for values in fields)
    spec = parse_crontab(expr)
    # The canonical text, parsed again, selects exactly the original values.
    assert _expand(spec) == (*fields[:4], {v % 7 for v in fields[4]})


def _expand(spec: CronSpec) -> tuple[set[int], ...]:
    """Values selected by a spec, from one-value probes through the public parser."""
    bounds = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
    result: list[set[int]] = []
    for index, (low, high) in enumerate(bounds):
        chosen: set[int] = set()
        for value in range(low, high + 1):
            probe = ["*"] * 5
            probe[index] = str(value)
            single = parse_crontab(" ".join(probe))
            target = single.normalized.split()[index]
            if _selects(spec.normalized.split()[index], target, index):
                chosen.add(value)
        result.append(chosen)
    return tuple(result)


def _selects(field: str, single: str, index: int) -> bool:
    # A value is selected when combining it with the field changes nothing.
    probe = ["*"] * 5
    probe[index] = f"{field},{single}" if field != "*" else "*"
    return parse_crontab(" ".join(probe)).normalized.split()[index] == field


@pytest.mark.parametrize("expr", ["0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 30-31 feb *"])
def test_day_no_chosen_month_has_is_rejected_at_once(expr: str) -> None:
    with pytest.raises(InvalidSchedule) as caught:
        parse_crontab(expr)
    assert caught.value.field == "cron"
    assert "never fires" in caught.value.reason


@pytest.mark.parametrize("expr", ["0 0 29 2 *", "0 0 31 * *", "0 0 30 2 mon"])
def test_rare_but_possible_days_are_accepted(expr: str) -> None:
    assert parse_crontab(expr).normalized


def test_a_list_led_by_a_star_over_other_values_is_refused_with_a_way_out() -> None:
    with pytest.raises(InvalidSchedule) as caught:
        parse_crontab("*/5,7 * * * *")
    assert "list the values without the '*'" in caught.value.reason
    assert parse_crontab("*/2,0 * * * *").minute == "*/2"


def test_day_fields_follow_crons_star_rule() -> None:
    # A step such as '*/2' starts with '*': both fields must match, as in cron.
    assert parse_crontab("38 12 17 * */2").canonical == "38 12 17 * */2"
    assert parse_crontab("38 12 17 * */2").day_or is False
    # A full range written out is not '*': either field matching fires the job.
    assert parse_crontab("38 12 17 * 0-6").canonical == "38 12 17 * 0,1,2,3,4,5,6"
    assert parse_crontab("38 12 17 * 0-6").day_or is True
