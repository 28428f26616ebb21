"""The pure parts: durations, countdown arithmetic, sanitising, gating, template expansion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from vintagestory_api.schedules.countdown import (
    countdown_plan,
    human_duration,
    render,
    sanitise,
)
from vintagestory_api.schedules.gating import gate
from vintagestory_api.schedules.schemas import Defer, OnlyIf, TemplateRequest
from vintagestory_api.schedules.steps import lead_seconds
from vintagestory_api.schedules.templates import expand

T = datetime(2026, 7, 1, 4, 0, tzinfo=UTC)


def test_human_durations() -> None:
    assert human_duration(1) == "1 second"
    assert human_duration(10) == "10 seconds"
    assert human_duration(60) == "1 minute"
    assert human_duration(898) == "15 minutes"
    assert human_duration(5400) == "1 hour 30 minutes"
    assert human_duration(7200) == "2 hours"
    assert render("Server restarts in {remaining}", 300) == "Server restarts in 5 minutes"


def test_sanitise_turns_braces_into_parentheses() -> None:
    assert sanitise("a {b} c") == "a (b) c"


def test_countdown_plan_on_time_and_after_a_late_start() -> None:
    on_time = countdown_plan(T, [900, 300, 60], T - timedelta(seconds=900))
    assert [(T - w.at).total_seconds() for w in on_time] == [900, 300, 60]
    late = countdown_plan(T, [900, 300, 60], T - timedelta(seconds=600))
    # The passed 15-minute warning becomes one at once with the 10 minutes that remain.
    assert [w.remaining_seconds for w in late] == [600, 300, 60]
    assert late[0].at == T - timedelta(seconds=600)
    assert countdown_plan(T, [10], T + timedelta(seconds=1)) == []


def test_gating_decisions() -> None:
    only, defer = OnlyIf(max_players=0), Defer(give_up_after_seconds=5, then="skip")
    assert gate(0, only, defer, 0).decision == "run"
    assert gate(2, only, None, 0).decision == "skip"
    assert gate(2, only, defer, 4).decision == "wait"
    assert gate(2, only, defer, 5).decision == "skip"
    anyway = gate(2, only, Defer(give_up_after_seconds=5, then="run"), 5)
    assert anyway.decision == "run"
    assert anyway.reason is not None
    assert anyway.reason.endswith("ran anyway")


def test_nightly_restart_template_expands_in_full() -> None:
    schedule = expand(TemplateRequest(template="nightly-restart", at="04:30", timezone="UTC"))
    assert schedule.id == "nightly-restart"
    assert schedule.trigger.model_dump() == {"cron": "30 4 * * *", "timezone": "UTC"}
    assert [step.action for step in schedule.steps] == ["announce", "backup", "restart"]
    assert lead_seconds(schedule.steps) == 900
