"""Which backups to prune: grandfather-father-son with a size cap, as a pure function.

Kept: the newest `keep_last`; the newest of each of the last `daily_days` calendar days and of
each of the last `weekly_weeks` ISO weeks (Monday to Sunday), both counted back from `now`'s
day and week in `tz`; pinned ones; and always the newest. Then, while the kept ones are larger
than `max_total_bytes` (0: no cap), the oldest kept one that is neither pinned nor the newest
goes as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo


@dataclass(frozen=True)
class Candidate:
    id: str
    created_at: datetime
    size: int
    pinned: bool = False


@dataclass(frozen=True)
class Policy:
    keep_last: int
    daily_days: int
    weekly_weeks: int
    max_total_bytes: int = 0


def _week(day: date) -> date:
    return day - timedelta(days=day.weekday())


def plan_pruning(
    backups: Sequence[Candidate], policy: Policy, now: datetime, tz: tzinfo
) -> list[tuple[str, str]]:
    """(id, reason) of each backup to delete, oldest first."""
    newest_first = sorted(backups, key=lambda b: b.created_at, reverse=True)
    if not newest_first:
        return []
    today = now.astimezone(tz).date()
    keep: set[str] = {newest_first[0].id}
    keep.update(b.id for b in newest_first if b.pinned)
    keep.update(b.id for b in newest_first[: policy.keep_last])
    days_seen: set[date] = set()
    weeks_seen: set[date] = set()
    for backup in newest_first:
        day = backup.created_at.astimezone(tz).date()
        if 0 <= (today - day).days < policy.daily_days and day not in days_seen:
            days_seen.add(day)
            keep.add(backup.id)
        week = _week(day)
        if 0 <= (_week(today) - week).days // 7 < policy.weekly_weeks and week not in weeks_seen:
            weeks_seen.add(week)
            keep.add(backup.id)
    removed: list[tuple[str, str]] = [
        (
            b.id,
            f"not among the newest {policy.keep_last}, nor the newest of a day within "
            f"{policy.daily_days} days or of a week within {policy.weekly_weeks} weeks",
        )
        for b in newest_first
        if b.id not in keep
    ]
    if policy.max_total_bytes > 0:
        kept = [b for b in newest_first if b.id in keep]
        total = sum(b.size for b in kept)
        for backup in reversed(kept):
            if total <= policy.max_total_bytes:
                break
            if backup.pinned or backup.id == newest_first[0].id:
                continue
            total -= backup.size
            removed.append(
                (backup.id, f"the backups kept were over the cap of {policy.max_total_bytes} bytes")
            )
    order = {b.id: b.created_at for b in newest_first}
    return sorted(removed, key=lambda item: order[item[0]])
