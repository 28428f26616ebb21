"""Countdown arithmetic and message text (pure): human durations, the warning plan of a step,
and the sanitising the game's logger needs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

PLACEHOLDER = "{remaining}"


def human_duration(seconds: float) -> str:
    """Time left in words: "10 seconds", "5 minutes", "1 hour 30 minutes".

    Under a minute to the second; under an hour to the nearest minute (a late warning says
    "15 minutes" for 14:58); beyond that hours and minutes."""
    whole = max(0, round(seconds))
    if whole < 60:
        return _unit(whole, "second")
    if whole < 3600:
        return _unit(max(1, round(whole / 60)), "minute")
    minutes = round(whole / 60)
    hours, rest = divmod(minutes, 60)
    text = _unit(hours, "hour")
    return f"{text} {_unit(rest, 'minute')}" if rest else text


def _unit(count: int, unit: str) -> str:
    return f"{count} {unit}{'' if count == 1 else 's'}"


def render(message: str, remaining_seconds: float) -> str:
    return message.replace(PLACEHOLDER, human_duration(remaining_seconds))


def sanitise(message: str) -> str:
    """The game formats its log line with the message, and a brace makes it drop the line:
    braces become parentheses."""
    return message.replace("{", "(").replace("}", ")")


@dataclass(frozen=True)
class Warning:
    at: datetime
    remaining_seconds: float


def countdown_plan(action_at: datetime, warn_before: list[int], now: datetime) -> list[Warning]:
    """The warnings still to give before `action_at`, in time order.

    Each is due `warn_before` seconds before the action. Warnings whose moment has passed (an
    earlier step ran long, a deferral) collapse into one given at once with the time that
    really remains, unless a later warning is due within the same second anyway."""
    remaining = (action_at - now).total_seconds()
    plan: list[Warning] = []
    passed = False
    for seconds in sorted(set(warn_before), reverse=True):
        if seconds > remaining + 0.5:
            passed = True
            continue
        plan.append(Warning(action_at - timedelta(seconds=seconds), float(seconds)))
    if passed and remaining >= 1 and not (plan and remaining - plan[0].remaining_seconds < 1):
        plan.insert(0, Warning(now, remaining))
    return plan
