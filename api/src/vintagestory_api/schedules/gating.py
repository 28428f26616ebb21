"""Player-aware gating (pure): at a fire time, run, wait and look again, or give up."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .schemas import Defer, OnlyIf


@dataclass(frozen=True)
class Gate:
    decision: Literal["run", "wait", "skip"]
    reason: str | None = None


def gate(players: int, only_if: OnlyIf | None, defer: Defer | None, waited: float) -> Gate:
    """What to do with `players` online after deferring `waited` seconds already."""
    if only_if is None or players <= only_if.max_players:
        return Gate("run")
    who = f"{players} player{'' if players == 1 else 's'} online"
    crowded = f"{who}, more than max_players {only_if.max_players}"
    if defer is None:
        return Gate("skip", crowded)
    if waited < defer.give_up_after_seconds:
        return Gate("wait", crowded)
    gave_up = f"{crowded} after waiting {defer.give_up_after_seconds} s"
    if defer.then == "run":
        return Gate("run", f"{gave_up}; ran anyway")
    return Gate("skip", gave_up)
