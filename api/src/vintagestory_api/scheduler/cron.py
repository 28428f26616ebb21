"""Schedule input: crontab parsing and translation, timezones, intervals, descriptions.

Pure code with no APScheduler import. A parsed `CronSpec` carries a canonical expression for
`crontimes.CronTimes`, the one evaluator of fire times (scheduler and previews alike), and a
normalized text for admins, in which every weekday is a name, never a digit.
"""

from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass
from datetime import UTC, tzinfo
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import tzlocal

from vintagestory_api.errors import clip

from .errors import InvalidSchedule

if TYPE_CHECKING:
    from cron_descriptor import Options

MAX_INTERVAL_SECONDS = 31 * 24 * 3600
# Long enough for any sensible crontab; bounds the work done on hostile input.
MAX_CRON_LENGTH = 256

_MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# Weekdays are rendered Monday first, so a range like 'mon-fri' never wraps around Sunday.
_APS_WEEKDAY_ORDER = (1, 2, 3, 4, 5, 6, 0)
_STAR_STEP = re.compile(r"^\*/[0-9]+$")
_QUARTZ_TERM = re.compile(r"^(?:\d*L|\d*W|LW|L-\d+)$", re.IGNORECASE)
# IANA keys are ASCII path segments; anything else (dots, absolute paths, NUL) never reaches
# ZoneInfo, which would otherwise try to open it as a file or raise ValueError.
_TZ_KEY = re.compile(r"^[A-Za-z0-9_+\-]+(?:/[A-Za-z0-9_+\-]+)*$")


@dataclass(frozen=True)
class _Field:
    name: str
    lo: int
    hi: int  # highest number accepted; 7 for day-of-week, where it means Sunday
    star_hi: int  # highest value '*' covers
    kind: str = "a number"
    names: tuple[str, ...] = ()  # names[0] is the number lo


_FIELDS = (
    _Field("minute", 0, 59, 59),
    _Field("hour", 0, 23, 23),
    _Field("day-of-month", 1, 31, 31),
    _Field("month", 1, 12, 12, "a month name or number", _MONTHS),
    _Field("day-of-week", 0, 7, 6, "a weekday name or number", _WEEKDAYS),
)
_DOW = _FIELDS[4]


@dataclass(frozen=True)
class CronSpec:
    """A parsed crontab.

    `normalized` is the canonical 5-field text shown to admins: numbers for minute, hour, day
    and month, weekday names (mon..sun) for day-of-week; a field written with a leading '*'
    stays '*' or '*/n', and any other field is rendered as its values, even when they cover
    the whole range ('0-6' becomes 'mon-sun', not '*'). That distinction is cron's: a leading
    '*' decides the day-of-month/day-of-week rule and whether a job is a wildcard job across
    DST changes. The text is itself valid input and parses back to the same spec.

    `canonical` is the same schedule for the evaluator (`crontimes.CronTimes`): each field '*',
    '*/n' or a comma list of numbers, weekdays 0-6 from Sunday.
    """

    minute: str
    hour: str
    day: str
    month: str
    day_of_week: str
    normalized: str
    canonical: str
    # Cron's rule: when either day field starts with '*' both must match; otherwise a day
    # matching either field fires the job.
    day_or: bool
    # The minute or the hour field starts with '*': cron runs such a job in both copies of a
    # repeated hour and drops its runs in a skipped one; fixed-time jobs run once either way.
    wildcard: bool


def parse_crontab(expr: str, *, field: str = "cron") -> CronSpec:
    """Parse a standard 5-field crontab (or an @macro); raise InvalidSchedule naming the field."""
    text = expr.strip()
    if not text:
        raise InvalidSchedule(field, "cron expression is empty")
    if len(text) > MAX_CRON_LENGTH:
        raise InvalidSchedule(field, f"cron expression is longer than {MAX_CRON_LENGTH} chars")
    if text.startswith("@"):
        macro = _MACROS.get(text.lower())
        if macro is None:
            known = ", ".join(_MACROS)
            raise InvalidSchedule(field, f"unknown macro '{clip(text)}'; supported: {known}")
        text = macro
    values = _parse_fields(text, field)
    parts = text.split()
    starred = [
        _star_form(part, spec, v, field)
        for part, spec, v in zip(parts, _FIELDS, values, strict=True)
    ]
    day_or = starred[2] is None and starred[4] is None
    _check_some_day_exists(values, day_or=day_or, field=field)
    rendered = [
        star
        if star is not None
        else (_render_weekdays(v) if spec is _DOW else _render_numbers(v, spec))
        for v, spec, star in zip(values, _FIELDS, starred, strict=True)
    ]
    canonical = [
        star if star is not None else ",".join(str(n) for n in sorted(v))
        for v, star in zip(values, starred, strict=True)
    ]
    minute, hour, day, month, day_of_week = rendered
    return CronSpec(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=day_of_week,
        normalized=" ".join(rendered),
        canonical=" ".join(canonical),
        day_or=day_or,
        wildcard=starred[0] is not None or starred[1] is not None,
    )


def _star_values(spec: _Field, step: int) -> set[int]:
    values = set(range(spec.lo, spec.star_hi + 1, step))
    return {v % 7 for v in values} if spec is _DOW else values


def _star_form(text: str, spec: _Field, values: frozenset[int], field: str) -> str | None:
    """'*' or '*/n' for a field written with a leading '*' (cron's star flag), else None."""
    if not text.startswith("*"):
        return None
    if len(values) == spec.star_hi - spec.lo + 1:
        return "*"  # '*', '*/1', or a list such as '*,5' that '*' covers anyway
    first = text.split(",")[0]
    if _STAR_STEP.match(first):
        step = int(first[2:])
        # '*/2,0' selects what '*/2' does: it is '*/2'.
        if values == frozenset(_star_values(spec, step)):
            return f"*/{step}"
    # '*,5' or '*/5,7': cron would set its star flag from the first character and then take
    # the values; spelling it out is clearer and keeps the rules visible.
    raise _fail(
        field,
        spec,
        f"'{text}' combines '*' with other items; use '*', '*/n', or list the values "
        f"without the '*'",
    )


# Longest month lengths (February counted with its leap day): a day-of-month that no chosen
# month has makes a schedule that never fires. Rejecting it here is instant; finding it out from
# the evaluator means a long search for nothing.
_MONTH_DAYS = {
    1: 31,
    2: 29,
    3: 31,
    4: 30,
    5: 31,
    6: 30,
    7: 31,
    8: 31,
    9: 30,
    10: 31,
    11: 30,
    12: 31,
}


def _check_some_day_exists(values: list[frozenset[int]], *, day_or: bool, field: str) -> None:
    days, months = values[2], values[3]
    if day_or:
        return  # day-of-month OR day-of-week: the weekday alone always matches some day
    if not any(day <= _MONTH_DAYS[month] for day in days for month in months):
        raise InvalidSchedule(
            field,
            f"day-of-month field allows only days {min(days)}-{max(days)}, which none of the "
            "chosen months has: this schedule never fires",
        )


def _parse_fields(text: str, field: str) -> list[frozenset[int]]:
    parts = text.split()
    if len(parts) != len(_FIELDS):
        raise InvalidSchedule(
            field, f"expected 5 fields (minute hour day month weekday), got {len(parts)}"
        )
    return [_parse_field(part, spec, field) for part, spec in zip(parts, _FIELDS, strict=True)]


def _fail(field: str, spec: _Field, reason: str) -> InvalidSchedule:
    return InvalidSchedule(field, f"{spec.name} field {reason}")


def _parse_field(text: str, spec: _Field, field: str) -> frozenset[int]:
    if "?" in text:
        raise _fail(
            field, spec, f"'{clip(text)}' uses '?', a Quartz extension; standard cron uses '*'"
        )
    if "#" in text:
        raise _fail(field, spec, f"'{clip(text)}' uses '#', a Quartz extension standard cron lacks")
    values: set[int] = set()
    for term in text.split(","):
        if not term:
            raise _fail(field, spec, f"'{clip(text)}' has an empty list item")
        base, slash, step_text = term.partition("/")
        step = 1
        if slash:
            if not (step_text.isascii() and step_text.isdigit()):
                raise _fail(
                    field, spec, f"'{clip(term)}' has step '{clip(step_text)}', not a whole number"
                )
            step = int(step_text)
            if step == 0:
                raise _fail(field, spec, f"'{clip(term)}' has step 0; a step must be 1 or more")
        if base == "*":
            first, last = spec.lo, spec.star_hi
        else:
            start_text, dash, end_text = base.partition("-")
            first = _value(start_text, spec, field)
            if dash:
                last = _value(end_text, spec, field)
                # "fri-sun" reads naturally as Friday through Sunday: a range ending in the
                # name sun ends at 7, which is Sunday too.
                if spec is _DOW and end_text.lower() == "sun" and first > 0:
                    last = 7
            else:
                # 'a/n' means a through the field's end, as cronie and APScheduler read it.
                last = spec.hi if slash else first
            if last < first:
                raise _fail(field, spec, f"'{clip(term)}' is a reversed range; write it low-high")
        values.update(range(first, last + 1, step))
    if spec is _DOW:
        return frozenset(v % 7 for v in values)
    return frozenset(values)


def _value(text: str, spec: _Field, field: str) -> int:
    if text.isascii() and text.isdigit():
        value = int(text)
        if not spec.lo <= value <= spec.hi:
            raise _fail(field, spec, f"'{clip(text)}' is out of range {spec.lo}-{spec.hi}")
        return value
    if text.lower() in spec.names:
        return spec.names.index(text.lower()) + spec.lo
    if _QUARTZ_TERM.match(text):
        raise _fail(field, spec, f"'{clip(text)}' uses 'L' or 'W', Quartz extensions cron lacks")
    if not text:
        raise _fail(field, spec, "has a list item or range with a missing number")
    raise _fail(field, spec, f"'{clip(text)}' is not {spec.kind} {spec.lo}-{spec.hi}")


def _render_numbers(values: frozenset[int], spec: _Field) -> str:
    ordered = sorted(values)
    steps = {b - a for a, b in itertools.pairwise(ordered)}
    if len(ordered) >= 3 and len(steps) == 1 and (step := steps.pop()) > 1:
        return f"{ordered[0]}-{ordered[-1]}/{step}"
    return ",".join(_runs([str(v) for v in ordered], ordered))


def _render_weekdays(values: frozenset[int]) -> str:
    positions = [i for i, day in enumerate(_APS_WEEKDAY_ORDER) if day in values]
    return ",".join(_runs([_WEEKDAYS[_APS_WEEKDAY_ORDER[i]] for i in positions], positions))


def _runs(labels: list[str], keys: list[int]) -> list[str]:
    """Join three or more consecutive keys into 'first-last'; keep shorter runs as a list."""
    out: list[str] = []
    start = 0
    for i in range(1, len(keys) + 1):
        if i == len(keys) or keys[i] != keys[i - 1] + 1:
            if i - start >= 3:
                out.append(f"{labels[start]}-{labels[i - 1]}")
            else:
                out.extend(labels[start:i])
            start = i
    return out


def parse_timezone(name: str | None, default: tzinfo, *, field: str = "timezone") -> tzinfo:
    """Resolve an IANA zone name; None or "" means `default`."""
    if name is None or not name.strip():
        return default
    key = name.strip()
    if len(key) > 64 or not _TZ_KEY.match(key):
        raise InvalidSchedule(field, f"{name[:64]!r} is not an IANA timezone name")
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, OSError, UnicodeDecodeError):
        # OSError covers names that are directories in the zone database, like "Europe".
        raise InvalidSchedule(field, f"unknown IANA timezone '{key}'") from None


def timezone_name(tz: tzinfo) -> str:
    if isinstance(tz, ZoneInfo) and tz.key:
        return tz.key
    return str(tz)


def host_timezone() -> tzinfo:
    """The host's zone as tzlocal finds it (TZ, /etc/timezone, /etc/localtime), else UTC."""
    try:
        # Without a configured name tzlocal loads /etc/localtime under the key "local": the
        # rules are still the host's, which matter more for firing times than the name.
        return tzlocal.get_localzone()
    except (LookupError, OSError, ValueError):
        return UTC


def validate_interval(seconds: object, *, field: str = "interval_seconds") -> int:
    """Return `seconds` as a positive whole number of seconds, at most 31 days."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise InvalidSchedule(field, f"must be a whole number of seconds, got {seconds!r:.40}")
    if isinstance(seconds, float):
        if not seconds.is_integer():
            raise InvalidSchedule(field, f"must be a whole number of seconds, got {seconds!r}")
        seconds = int(seconds)
    if seconds <= 0:
        raise InvalidSchedule(field, f"must be at least 1 second, got {clip(seconds)}")
    if seconds > MAX_INTERVAL_SECONDS:
        raise InvalidSchedule(
            field,
            f"must be at most {MAX_INTERVAL_SECONDS} seconds (31 days), got {clip(seconds)}",
        )
    return seconds


_UNITS = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))


def describe_duration(seconds: int) -> str:
    parts: list[str] = []
    for unit, size in _UNITS:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {unit}{'' if count == 1 else 's'}")
    return " ".join(parts) or "0 seconds"


def describe_interval(seconds: int) -> str:
    text = describe_duration(seconds)
    # "every minute", not "every 1 minute"; "every 1 hour 30 minutes" keeps its number.
    if text.startswith("1 ") and text.count(" ") == 1:
        return f"every {text[2:]}"
    return f"every {text}"


@functools.cache
def _descriptor_options() -> Options:
    # A fixed locale: the output must not depend on the host's LANG. Weekday 0 is Sunday, as in
    # our normalized text (which only ever holds weekday names anyway).
    from cron_descriptor import CasingTypeEnum, Options  # here: import cost at startup

    return Options(
        CasingTypeEnum.Sentence,
        locale_code="en_US",
        use_24hour_time_format=False,
        day_of_week_start_index_zero=True,
    )


def describe_cron(spec: CronSpec, tz_name: str) -> str:
    from cron_descriptor import ExpressionDescriptor  # here: import cost at startup

    text = ExpressionDescriptor(spec.normalized, _descriptor_options()).get_description()
    return f"{text} ({tz_name})"
