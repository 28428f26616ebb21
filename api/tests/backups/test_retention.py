"""Retention as a pure function: 60 simulated days of backups keep exactly the expected set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from vintagestory_api.backups.retention import Candidate, Policy, plan_pruning

START = datetime(2026, 1, 1, 3, 0, tzinfo=UTC)  # a Thursday


def _sixty_days() -> list[Candidate]:
    """A nightly backup for 60 days, plus a manual one at 15:00 every tenth day."""
    backups = []
    for day in range(60):
        moment = START + timedelta(days=day)
        backups.append(Candidate(f"d{day:02}", moment, 100))
        if day % 10 == 0:
            backups.append(Candidate(f"m{day:02}", moment + timedelta(hours=12), 100))
    return backups


def _kept(backups: list[Candidate], policy: Policy, now: datetime) -> set[str]:
    removed = {backup_id for backup_id, _ in plan_pruning(backups, policy, now, UTC)}
    return {b.id for b in backups} - removed


def test_sixty_days_keep_the_last_n_the_days_and_the_weeks() -> None:
    backups = _sixty_days()
    now = START + timedelta(days=59, hours=1)  # 2026-03-01 04:00, a Sunday
    kept = _kept(backups, Policy(keep_last=3, daily_days=7, weekly_weeks=4), now)
    # Last 3: d59, d58, d57. Daily, the 7 days 2026-02-23 .. 03-01: d53..d59.
    # Weekly, the ISO weeks starting 03-01's Monday 02-23 and the three before: the newest of
    # each, the Sundays 02-22 (d52), 02-15 (d45), 02-08 (d38); the current week is covered.
    assert kept == {f"d{n}" for n in range(53, 60)} | {"d52", "d45", "d38"}


def test_a_manual_backup_is_the_newest_of_its_day() -> None:
    now = START + timedelta(days=50, hours=13)  # after m50, on day 50 of the 60
    backups = [b for b in _sixty_days() if b.created_at <= now]
    kept = _kept(backups, Policy(keep_last=1, daily_days=2, weekly_weeks=0), now)
    # Day 50 keeps its newest (m50, also the last 1), day 49 keeps d49.
    assert kept == {"m50", "d49"}


def test_pinned_and_the_newest_survive_even_a_zero_policy_and_a_size_cap() -> None:
    backups = _sixty_days()
    backups[0] = Candidate("d00", START, 100, pinned=True)
    now = START + timedelta(days=59, hours=1)
    policy = Policy(keep_last=1, daily_days=0, weekly_weeks=0, max_total_bytes=1)
    assert _kept(backups, policy, now) == {"d00", "d59"}


def test_the_size_cap_removes_the_oldest_kept_first_and_says_why() -> None:
    backups = _sixty_days()
    now = START + timedelta(days=59, hours=1)
    policy = Policy(keep_last=10, daily_days=0, weekly_weeks=0, max_total_bytes=450)
    removed = dict(plan_pruning(backups, policy, now, UTC))
    kept = {b.id for b in backups} - set(removed)
    assert kept == {"d59", "d58", "d57", "d56"}
    assert "over the cap of 450 bytes" in removed["d55"]
    assert "not among the newest 10" in removed["d00"]


def test_nothing_to_prune_in_an_empty_catalogue() -> None:
    assert plan_pruning([], Policy(1, 1, 1), START, UTC) == []
