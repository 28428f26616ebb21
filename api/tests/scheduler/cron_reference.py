"""A brute-force model of Debian cron's main loop, used only to test crontimes.

It shares no code with `vintagestory_api.scheduler.crontimes` and does not use cronsim: it parses
the canonical expression itself, applies cron's day rule itself, and replays cron.c minute by
minute, reading the zone only through zoneinfo's UTC-to-local conversion. Per real minute:

    clockTime = (now + GMToff) / 60     local wall-clock minutes; GMToff is re-read only when
                                        tm_isdst flips (set_time)
    timeDiff  = clockTime - virtualTime
      == 1          normal: virtualTime = clockTime, run every job matching it
      in (0, 5]     woke late: step virtualTime up to clockTime, running every matching job
      in (5, 180]   jumped forward (DST starts): run wildcard jobs matching clockTime, then
                    fixed-time jobs for each virtual minute up to and including clockTime
      in (-180, 0]  jumped back (DST ends): run wildcard jobs matching clockTime only;
                    virtualTime stays until the clock catches up
      otherwise     "clock jumped": virtualTime = clockTime, run every job matching it

A job matches a virtual minute when that minute's wall-clock fields match (find_jobs: gmtime of
the local-minute count), with cron's day rule: if the day-of-month or the day-of-week field
starts with '*', both must match, otherwise either. A job is wildcard when its minute or hour
field starts with '*' (MIN_STAR, HR_STAR), fixed-time otherwise.

Simplifications: jobs start instantly (cron sleeps 10 s after each catch-up minute that started a
job, and abandons the catch-up once the clock reaches the next minute), and cron never wakes
late. To be fast, the model skips, in the normal state, spans of wall time in which nothing can
match (up to the next month, day, hour or minute that could), but never past a minute at which
the zone's offset or DST flag changes: stepping through such a span would run nothing and leave
cron in the same state. Changes are found by a daily scan and bisection, so two changes within
one day would be missed; no zone used here has such a pair.
"""

from __future__ import annotations

import collections
import functools
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo

_LOCAL_EPOCH = datetime(1970, 1, 1)
_UTC_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LIMITS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_MINUTES_PER_YEAR = 366 * 24 * 60


@dataclass(frozen=True)
class Entry:
    """A parsed crontab line, as cron's entry struct holds it."""

    minutes: frozenset[int]
    hours: frozenset[int]
    doms: frozenset[int]
    months: frozenset[int]
    dows: frozenset[int]  # 0-6 from Sunday; cron's 7 is folded into 0
    min_star: bool
    hr_star: bool
    dom_star: bool
    dow_star: bool

    @property
    def wildcard(self) -> bool:
        return self.min_star or self.hr_star

    def day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        by_dom = day.day in self.doms
        by_dow = (day.weekday() + 1) % 7 in self.dows
        if self.dom_star or self.dow_star:
            return by_dom and by_dow
        return by_dom or by_dow

    def matches(self, wall: datetime) -> bool:
        return wall.minute in self.minutes and wall.hour in self.hours and self.day_matches(wall)


def parse_entry(expression: str) -> Entry:
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(expression)
    sets: list[frozenset[int]] = []
    for text, (lo, hi) in zip(fields, _LIMITS, strict=True):
        if text == "*":
            values = set(range(lo, hi + 1))
        elif text.startswith("*/"):
            values = set(range(lo, hi + 1, int(text[2:])))
        else:
            values = {int(v) for v in text.split(",")}
        if not values or min(values) < lo or max(values) > hi:
            raise ValueError(expression)
        sets.append(frozenset(values))
    minutes, hours, doms, months, dows = sets
    stars = [text.startswith("*") for text in fields]
    return Entry(
        minutes,
        hours,
        doms,
        months,
        frozenset(v % 7 for v in dows),
        min_star=stars[0],
        hr_star=stars[1],
        dom_star=stars[2],
        dow_star=stars[4],
    )


@dataclass(frozen=True)
class Run:
    at: datetime  # the UTC minute in which cron starts the job
    wall: datetime  # the naive wall-clock minute cron found it for (virtual or clock time)


@dataclass
class Simulation:
    runs: list[Run] = field(default_factory=list)
    # How often each timeDiff branch other than the normal one was taken.
    branches: collections.Counter[str] = field(default_factory=collections.Counter)
    # UTC offset changes that did not flip tm_isdst, which cron does not notice.
    unnoticed_offset_changes: int = 0


def simulate(
    expression: str,
    tz: tzinfo,
    after: datetime,
    count: int,
    *,
    warmup: timedelta = timedelta(hours=4),
    max_years: int = 300,
) -> Simulation:
    """Cron's runs after `after`, until `count` distinct instants or `max_years` have passed.

    Cron starts `warmup` earlier, so that it has lived through a DST change just before `after`
    as a long-running cron has: a change affects cron's state for as long as the change is.
    """
    entry = parse_entry(expression)
    after_utc = after.astimezone(UTC)
    result = Simulation()
    distinct: set[datetime] = set()
    minute = int((after_utc - warmup).timestamp()) // 60
    horizon = minute + max_years * _MINUTES_PER_YEAR
    offset, isdst = _zone(tz, minute)
    gmtoff = offset
    virtual = running = _clock(minute, gmtoff)

    def find_jobs(vtime: int, do_wild: bool, do_nonwild: bool) -> None:
        wall = _LOCAL_EPOCH + timedelta(minutes=vtime)
        if entry.matches(wall) and (do_wild if entry.wildcard else do_nonwild):
            at = _UTC_EPOCH + timedelta(minutes=minute)
            if at > after_utc:
                result.runs.append(Run(at, wall))
                distinct.add(at)

    while len(distinct) < count and minute < horizon:
        if virtual == running and (skip := _skippable(entry, tz, minute, running)):
            minute += skip
            virtual = running = running + skip
            continue
        minute += 1
        actual, dst = _zone(tz, minute)
        if dst != isdst:
            isdst, gmtoff = dst, actual
        elif actual != offset:
            result.unnoticed_offset_changes += 1
        offset = actual
        clock = _clock(minute, gmtoff)
        if clock == running:
            continue  # cron sleeps on until the clock shows another minute
        running = clock
        diff = running - virtual
        if diff == 1:
            virtual = running
            find_jobs(virtual, True, True)
        elif 0 < diff <= 5:
            result.branches["small"] += 1
            while virtual < running:
                virtual += 1
                find_jobs(virtual, True, True)
        elif 5 < diff <= 180:
            result.branches["medium"] += 1
            find_jobs(running, True, False)
            while virtual < running:
                virtual += 1
                find_jobs(virtual, False, True)
        elif -180 < diff <= 0:
            result.branches["negative"] += 1
            find_jobs(running, True, False)
        else:
            result.branches["large"] += 1
            virtual = running
            find_jobs(running, True, True)
    return result


def _zone(tz: tzinfo, minute: int) -> tuple[int, bool]:
    # cron wakes a second into the minute (cron_sleep) and reads localtime's tm_gmtoff/tm_isdst.
    local = datetime.fromtimestamp(minute * 60 + 1, tz)
    offset, dst = local.utcoffset(), local.dst()
    assert offset is not None
    return int(offset.total_seconds()), bool(dst)


def _clock(minute: int, gmtoff: int) -> int:
    return (minute * 60 + 1 + gmtoff) // 60


def _skippable(entry: Entry, tz: tzinfo, minute: int, running: int) -> int:
    """How many minutes after `running` can be skipped (maybe 0): no wall-clock minute in them
    matches and the zone does not change, so stepping through them would run nothing and
    leave cron as skipping does."""
    wall = _LOCAL_EPOCH + timedelta(minutes=running)
    span = int((_quiet_until(entry, wall) - wall).total_seconds()) // 60
    change = _next_change(tz, minute, minute + span)
    return span if change is None else min(span, change - minute - 1)


def _quiet_until(entry: Entry, wall: datetime) -> datetime:
    """The end of the span after `wall` in which no wall-clock minute matches."""
    minute = timedelta(minutes=1)
    if wall.month not in entry.months:
        following = _next_month(wall)
        while following.month not in entry.months:
            following = _next_month(following)
        return following - minute
    if not entry.day_matches(wall.date()):
        day = wall.date() + timedelta(days=1)
        while day.month == wall.month and not entry.day_matches(day):
            day += timedelta(days=1)
        return datetime(day.year, day.month, day.day) - minute
    if wall.hour not in entry.hours:
        hours = [h for h in entry.hours if h > wall.hour]
        if not hours:
            return wall.replace(hour=23, minute=59)
        return wall.replace(hour=min(hours), minute=0) - minute
    minutes = [m for m in entry.minutes if m > wall.minute]
    return wall.replace(minute=min(minutes) - 1 if minutes else 59)


def _next_month(wall: datetime) -> datetime:
    return (wall.replace(day=28, hour=0, minute=0) + timedelta(days=4)).replace(day=1)


def _next_change(tz: tzinfo, minute: int, until: int) -> int | None:
    """The first minute in (minute, until] whose offset or DST flag differs from the one before."""
    year = (_UTC_EPOCH + timedelta(minutes=minute)).year
    while _year_start(year) <= until:
        for change in _changes(tz, year):
            if minute < change <= until:
                return change
        year += 1
    return None


def _year_start(year: int) -> int:
    return int(datetime(year, 1, 1, tzinfo=UTC).timestamp()) // 60


@functools.cache
def _changes(tz: tzinfo, year: int) -> tuple[int, ...]:
    """The minutes of UTC year `year` whose _zone answer differs from the minute before: a daily
    scan, then bisection. Two changes within one day would be seen as at most one."""
    found: list[int] = []
    lo, end = _year_start(year) - 1, _year_start(year + 1) - 1
    while lo < end:
        hi = min(lo + 1440, end)
        state, state_hi = _zone(tz, lo), _zone(tz, hi)
        a = lo
        while state != state_hi:
            b = hi  # _zone(a) is `state`, _zone(b) is not
            while b - a > 1:
                mid = (a + b) // 2
                if _zone(tz, mid) == state:
                    a = mid
                else:
                    b = mid
            found.append(b)
            a, state = b, _zone(tz, b)
        lo = hi
    return tuple(found)
