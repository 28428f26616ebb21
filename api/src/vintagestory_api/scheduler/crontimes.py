"""Cron fire times as Debian cron runs them: the one evaluator behind the scheduler and previews.

Two layers:

* The wall-clock calendar, which local wall times an expression matches, is cronsim's. It is fed
  naive datetimes, so it never sees a UTC offset: it handles the fields, steps, 0 and 7 as
  Sunday, cron's day-of-month/day-of-week rule (when either field starts with '*' both must
  match, otherwise either one), and gives up after 50 years without a match.
* The real instants at which each wall-clock match runs are worked out here, following Debian
  cron's main loop (cron.c), whose clocks count local wall-clock minutes:

  - A *wildcard* job is one whose minute or hour field starts with '*' (cron's MIN_STAR and
    HR_STAR flags, set from the text as written, so '*/15' is wildcard and an explicit '0-59'
    is not). Every other job is *fixed-time*.
  - Clocks jump forward (wall times that do not exist): cron runs wildcard jobs for the first
    minute after the jump only, and fixed-time jobs for every minute it skipped, right away.
    So a skipped wildcard match is dropped, and a skipped fixed-time match runs at the first
    instant after the gap. Cron starts a fixed-time job once per skipped match (and once more
    if the first minute after the gap matches too); here they coalesce into one run.
  - Clocks go back (wall times that occur twice): cron runs wildcard jobs in both copies and
    fixed-time jobs in the first copy only.

Deliberate differences from Debian cron, for offset changes that no current DST rule makes:
a change of 3 hours or more takes cron's "clock jumped" branch (skipped fixed-time matches are
dropped, and after a large step back every job runs again); an offset change without a DST flag
flip goes unnoticed by cron, which re-reads the offset only when tm_isdst changes. Here every
offset change is treated like a DST change, using the zone's real offset.

cronsim's own time-zone mode is not used. For wildcard jobs it walks real instants and misses
matches after a 30-minute change (Australia/Lord_Howe), and can return a nonexistent midnight
as a match (America/Havana); for fixed-time jobs started inside a repeated hour it can return
a time before the start.
"""

from __future__ import annotations

import calendar
import contextlib
import heapq
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from typing import Literal

from cronsim import CronSim, CronSimError

__all__ = ["CronTimes", "DstNote", "dst_notes"]

_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 7),  # 7 is Sunday too, as in cron
)
_CANONICAL = re.compile(r"\*(?:/[0-9]{1,3})?|[0-9]{1,2}(?:,[0-9]{1,2})*")
_DAY = timedelta(days=1)
# Offset changes are found by sampling the offset on these days (from the 1st of a month the
# schedule can match) and bisecting between samples that differ. Two changes that cancel out
# between neighbouring samples, 11 days apart, would go unseen; no zone has had such a pair
# in decades.
_SAMPLE_DAYS = (-1, 10, 21, 32)
# dst_notes examines at most this many months: 1000 years of a one-month schedule.
_MAX_NOTE_MONTHS = 12_000


@dataclass(frozen=True)
class DstNote:
    """What a DST change (or any UTC offset change) does to a schedule on one day."""

    code: Literal["DST_SKIPPED", "DST_REPEATED"]
    day: date
    message: str


@dataclass(frozen=True)
class _Change:
    at: datetime  # UTC instant from which the new offset applies
    before: timedelta
    after: timedelta
    dst_before: timedelta
    dst_after: timedelta


class CronTimes:
    """The fire times of one canonical cron expression in one time zone.

    The expression has five fields (minute hour day-of-month month day-of-week), each '*',
    '*/n', or a comma list of plain numbers. A field that starts with '*' means what it does in
    cron: for the day-of-month/day-of-week rule, and, in the minute or hour field, for what a
    DST change does to the job (see the module docstring).
    """

    __slots__ = ("_calendar", "_min_day", "_months", "expression", "tz", "wildcard")

    def __init__(self, expression: str, tz: tzinfo) -> None:
        self.expression = _canonical(expression)
        self.tz = tz
        fields = self.expression.split()
        self.wildcard = fields[0].startswith("*") or fields[1].startswith("*")
        # What dst_notes may skip: months not in the month field, and, when every run needs a
        # listed day of the month (cron's AND rule, day-of-week starting with '*'), months too
        # short for the smallest.
        self._months = _month_set(fields[3])
        self._min_day = 1
        if fields[4].startswith("*") and not fields[2].startswith("*"):
            self._min_day = min(int(v) for v in fields[2].split(","))
        try:
            # Kept for its day rule (dst_notes) and to learn whether the schedule can fire.
            self._calendar: CronSim | None = CronSim(self.expression, datetime(2000, 1, 1))
        except CronSimError:
            # The syntax is checked above, so this is cronsim finding that none of the months
            # has the day of the month: the schedule never fires.
            self._calendar = None

    def next_after(self, moment: datetime) -> datetime | None:
        """The first run strictly after the aware `moment`, or None if there is none.

        The result is aware, in `tz`, labelled with the offset in force at that instant: a
        fixed-time run moved out of a skipped hour reads 03:00+02:00, not 02:30+01:00. None
        means no run within cronsim's horizon of 50 years without a match. For the first run
        at or after a moment, pass that moment minus one microsecond.
        """
        return next(self.iter_after(moment, 1), None)

    def iter_after(self, moment: datetime, limit: int | None = None) -> Iterator[datetime]:
        """Runs strictly after the aware `moment`, ascending, each instant once, at most `limit`."""
        after = _as_utc(moment)
        if self._calendar is None or (limit is not None and limit <= 0):
            return iter(())
        return self._local_runs(after, limit)

    def dst_notes(self, start: datetime, end: datetime) -> list[DstNote]:
        """What each UTC offset change between `start` and `end` does to this schedule.

        One note per change on which the schedule has wall-clock matches in the skipped or
        repeated times, saying what the evaluator does with them. Only months the schedule can
        match are searched for changes, at most 12,000 of them.
        """
        lo, hi = _as_utc(start), _as_utc(end)
        if self._calendar is None or hi < lo or isinstance(self.tz, timezone):
            return []
        notes: list[DstNote] = []
        for change in _changes(self.tz, lo - _DAY, hi + _DAY, self._months, self._min_day):
            size = abs(change.after - change.before)
            # A repeated hour concerns runs up to its length either side of the change.
            reach = size if change.after < change.before else timedelta()
            if change.at + reach >= lo and change.at - reach <= hi:
                note = self._note(change, self._calendar)
                if note is not None:
                    notes.append(note)
        return notes

    def _local_runs(self, after: datetime, limit: int | None) -> Iterator[datetime]:
        for count, run in enumerate(self._runs(after), start=1):
            yield run.astimezone(self.tz)
            if count == limit:
                return

    def _runs(self, after: datetime) -> Iterator[datetime]:
        """Run instants (UTC) strictly after `after`, ascending, each once."""
        pending: list[datetime] = []
        last = after
        for wall in self._walls(self._earliest_wall(after)):
            runs = self._runs_of(wall)
            if not runs:
                continue
            for run in runs:
                if run > last:
                    heapq.heappush(pending, run)
            # The first run of a later wall time is never earlier than this one's, so every
            # pending run up to it is final. Only the second copy of a repeated wall time waits.
            while pending and pending[0] <= runs[0]:
                run = heapq.heappop(pending)
                if run > last:  # equal runs are one run: coalesced catch-up after a gap
                    last = run
                    yield run
        while pending:
            run = heapq.heappop(pending)
            if run > last:
                last = run
                yield run

    def _earliest_wall(self, after: datetime) -> datetime:
        # Wall time W runs at W - offset, for an offset in force around W, so only wall times
        # after `after` + the smallest nearby offset can run after `after`. The offset a day
        # ahead covers a repeated hour that `after` is in (or that is about to begin), whose
        # second copies belong to wall times that are earlier than `after`'s own.
        offset = _offset_at(self.tz, after)
        with contextlib.suppress(OverflowError):
            offset = min(offset, _offset_at(self.tz, after + _DAY))
        return (after + offset).replace(tzinfo=None)

    def _walls(self, start: datetime) -> Iterator[datetime]:
        """Wall-clock matches (naive) strictly after the naive `start`, up to cronsim's horizon."""
        try:
            walls = CronSim(self.expression, start)
            while True:
                yield next(walls)
        except (StopIteration, OverflowError):  # 50 years without a match, or year 9999
            return

    def _runs_of(self, wall: datetime) -> tuple[datetime, ...]:
        """The instants (UTC, ascending) at which cron runs the job for wall-clock match `wall`."""
        # PEP 495: fold=0 reads a wall time with the offset before a change, fold=1 after it.
        offset0 = _offset(wall.replace(tzinfo=self.tz))
        offset1 = _offset(wall.replace(tzinfo=self.tz, fold=1))
        first = (wall - offset0).replace(tzinfo=UTC)
        if offset0 == offset1:
            return (first,)
        if offset0 > offset1:  # the wall time occurs twice
            return (first, (wall - offset1).replace(tzinfo=UTC)) if self.wildcard else (first,)
        if self.wildcard:  # the wall time does not exist
            return ()
        # `first` reads the wall time with the old offset, which lands after the change, and
        # `wall - offset1` before it: the change lies between the two.
        return (_change_instant(self.tz, (wall - offset1).replace(tzinfo=UTC), first),)

    def _note(self, change: _Change, day_rule: CronSim) -> DstNote | None:
        skipped = change.after > change.before
        low, high = sorted((change.at + change.before, change.at + change.after))
        low, high = low.replace(tzinfo=None), high.replace(tzinfo=None)
        # Cheap test before walking the calendar: does the day rule match a day the window
        # touches? cronsim's own day rule, so it cannot disagree with the walk below.
        if not any(day_rule.match_day(d) for d in {low.date(), high.date()}):
            return None
        walls: list[datetime] = []
        gap_end_matches = False
        for wall in self._walls(low - timedelta(microseconds=1)):
            if wall >= high:
                gap_end_matches = skipped and wall == high
                break
            walls.append(wall)
        if not walls:
            return None
        zone = getattr(self.tz, "key", None) or str(self.tz)
        if skipped:
            label = "DST starts" if change.dst_after > change.dst_before else "clocks go forward"
        else:
            label = "DST ends" if change.dst_after < change.dst_before else "clocks go back"
        day = walls[0].date()
        where = f"on {day} in {zone} ({label})"
        runs = [self._runs_of(wall) for wall in walls]
        names = _times(walls)
        if skipped:
            verb = "does not exist" if len(walls) == 1 else "do not exist"
            moved = sorted({run for one in runs for run in one})
            if not moved:
                outcome = "that run is skipped" if len(walls) == 1 else "those runs are skipped"
            else:
                at = _times([run.astimezone(self.tz).replace(tzinfo=None) for run in moved])
                if len(walls) == 1:
                    outcome = f"that run happens at {at} instead"
                else:
                    outcome = f"the job runs once at {at} instead"
                if gap_end_matches:
                    outcome += f", together with the regular {at} run"
            return DstNote("DST_SKIPPED", day, f"{names} {verb} {where}; {outcome}")
        verb = "occurs" if len(walls) == 1 else "occur"
        if all(len(one) == 2 for one in runs):
            apart = _duration(change.before - change.after)
            outcome = f"the job runs at both occurrences, {apart} apart"
        elif len(walls) == 1:
            outcome = "the job runs once, at the first occurrence"
        else:
            outcome = "each runs once, at the first occurrence"
        return DstNote("DST_REPEATED", day, f"{names} {verb} twice {where}; {outcome}")


def dst_notes(expression: str, tz: tzinfo, start: datetime, end: datetime) -> list[DstNote]:
    """What each UTC offset change between `start` and `end` does to the schedule."""
    return CronTimes(expression, tz).dst_notes(start, end)


def _canonical(expression: str) -> str:
    fields = expression.split()
    if len(fields) != len(_FIELDS):
        raise ValueError(f"expected 5 cron fields, got {len(fields)}: {expression!r}")
    for text, (name, lo, hi) in zip(fields, _FIELDS, strict=True):
        if not _CANONICAL.fullmatch(text):
            raise ValueError(f"{name} field {text!r} is not '*', '*/n' or a list of numbers")
        if text.startswith("*/"):
            if int(text[2:]) == 0:
                raise ValueError(f"{name} field {text!r} has step 0")
        elif text != "*" and not all(lo <= int(v) <= hi for v in text.split(",")):
            raise ValueError(f"{name} field {text!r} is outside {lo}-{hi}")
    return " ".join(fields)


def _month_set(text: str) -> frozenset[int]:
    if text.startswith("*"):
        step = int(text[2:]) if text.startswith("*/") else 1
        return frozenset(range(1, 13, step))
    return frozenset(int(v) for v in text.split(","))


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"expected an aware datetime, got {moment!r}")
    return moment.astimezone(UTC)


def _offset(moment: datetime) -> timedelta:
    offset = moment.utcoffset()
    if offset is None:
        raise ValueError(f"time zone {moment.tzinfo!r} gives no UTC offset")
    return offset


def _offset_at(tz: tzinfo, instant: datetime) -> timedelta:
    return _offset(instant.astimezone(tz))


def _change_instant(tz: tzinfo, before: datetime, after: datetime) -> datetime:
    """The first instant in (before, after] with `after`'s offset, up to a whole local minute."""
    target = _offset_at(tz, after)
    lo, hi = int(before.timestamp()), int(after.timestamp())
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _offset_at(tz, datetime.fromtimestamp(mid, UTC)) == target:
            hi = mid
        else:
            lo = mid
    instant = datetime.fromtimestamp(hi, UTC)
    # Cron acts on whole wall-clock minutes; only offsets with seconds (pre-1900) need this.
    second = instant.astimezone(tz).second
    return instant + timedelta(seconds=(60 - second) % 60)


def _changes(
    tz: tzinfo, lo: datetime, hi: datetime, months: frozenset[int], min_day: int
) -> Iterator[_Change]:
    """UTC offset changes between `lo` and `hi` in the local months that can match.

    A month can match if it is in `months` and has at least `min_day` days.
    """
    first = lo.astimezone(tz)
    seen: set[datetime] = set()
    examined = 0
    for year in range(first.year, 9999):
        for month in sorted(months):
            if (year, month) < (first.year, first.month):
                continue
            month_start = datetime(year, month, 1, tzinfo=tz).astimezone(UTC)
            examined += 1
            if month_start > hi or examined > _MAX_NOTE_MONTHS:
                return
            if calendar.monthrange(year, month)[1] < min_day:
                continue
            # From a day before the 1st to a day after the month: a change near midnight can
            # touch the wall times of the neighbouring month.
            samples = [month_start + timedelta(days=d) for d in _SAMPLE_DAYS]
            states = [_state(tz, sample) for sample in samples]
            for i in range(len(samples) - 1):
                if states[i] == states[i + 1]:
                    continue
                pair = samples[i], samples[i + 1], states[i], states[i + 1]
                for change in _changes_between(tz, *pair):
                    if change.at not in seen:  # neighbouring months' samples overlap
                        seen.add(change.at)
                        yield change


def _state(tz: tzinfo, instant: datetime) -> tuple[timedelta, timedelta]:
    local = instant.astimezone(tz)
    return _offset(local), local.dst() or timedelta()


def _changes_between(
    tz: tzinfo,
    a: datetime,
    b: datetime,
    state_a: tuple[timedelta, timedelta],
    state_b: tuple[timedelta, timedelta],
) -> Iterator[_Change]:
    """The changes between `a` (in state_a) and `b` (in state_b)."""
    while state_a != state_b:
        lo, hi = int(a.timestamp()), int(b.timestamp())
        while hi - lo > 1:  # the state at lo is state_a, at hi it is not
            mid = (lo + hi) // 2
            if _state(tz, datetime.fromtimestamp(mid, UTC)) == state_a:
                lo = mid
            else:
                hi = mid
        a = datetime.fromtimestamp(hi, UTC)
        state_new = _state(tz, a)
        if state_new[0] != state_a[0]:  # a DST flag change alone moves no wall clock
            yield _Change(a, state_a[0], state_new[0], state_a[1], state_new[1])
        state_a = state_new


def _times(walls: list[datetime]) -> str:
    labels = [wall.strftime("%H:%M") for wall in walls]
    if len(labels) > 4:
        return f"the {len(labels)} times from {labels[0]} to {labels[-1]}"
    if len(labels) == 1:
        return labels[0]
    return f"{', '.join(labels[:-1])} and {labels[-1]}"


def _duration(delta: timedelta) -> str:
    hours, minutes = divmod(int(delta.total_seconds()) // 60, 60)
    parts = []
    if hours:
        parts.append(f"{hours} hour" + ("s" if hours > 1 else ""))
    if minutes:
        parts.append(f"{minutes} minute" + ("s" if minutes > 1 else ""))
    return " ".join(parts)
