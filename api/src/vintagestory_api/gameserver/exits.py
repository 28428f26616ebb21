"""One supervised run of the game server, how its exit is described, and the crash-loop rule."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .console import CommandWriter
from .launch import RUNTIME_MISSING_EXIT, RUNTIME_MISSING_TEXT, runtime_missing_message
from .process import GameProcess
from .schemas import EndedBy, ErrorInfo, LastExit

CRASH_LOOP_COUNT = 3
CRASH_LOOP_WINDOW = 600.0
MAX_BACKOFF = 300.0


@dataclass(frozen=True)
class Timings:
    start_timeout: float
    stop_timeout: float
    kill_timeout: float
    backoff: float
    auto_restart: bool


@dataclass
class GameRun:
    """One process, from spawn to reaped."""

    process: GameProcess
    writer: CommandWriter
    started_at: datetime
    started_mono: float
    ready_at: datetime | None = None
    ready_seconds: float | None = None
    stop_requested: bool = False
    stop_step: EndedBy | None = None
    stop_reason: str | None = None
    run_game_seen: bool = False
    stderr: list[str] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


def describe_exit(run: GameRun, status: int, last_lines: list[str]) -> LastExit:
    """What ended this run: asked for (by which step) or not (by itself, or a crash)."""
    error = None
    if status == RUNTIME_MISSING_EXIT or any(RUNTIME_MISSING_TEXT in s for s in run.stderr):
        error = ErrorInfo(
            code="DOTNET_RUNTIME_MISSING", message=runtime_missing_message(run.stderr)
        )
    if run.stop_requested:
        ended_by: EndedBy = run.stop_step or "sigterm"
    else:
        # Exit 0 is no proof of a request: self-shutdowns (disk, RAM, errors) exit 0 too.
        ended_by = "self" if status == 0 and run.stop_reason else "crash"
    return LastExit(
        code=status if status >= 0 else None,
        signal=-status if status < 0 else None,
        requested=run.stop_requested,
        stop_reason=run.stop_reason,
        ended_by=ended_by,
        at=datetime.now(UTC),
        last_lines=last_lines,
        error=error,
    )


class CrashLoop:
    """Crashes within the window; `CRASH_LOOP_COUNT` of them is a loop."""

    def __init__(self) -> None:
        self._times: deque[float] = deque()

    def crashed(self) -> int:
        """Count one crash now; returns how many fall within the window."""
        now = time.monotonic()
        self._times.append(now)
        while self._times and now - self._times[0] > CRASH_LOOP_WINDOW:
            self._times.popleft()
        return len(self._times)

    def clear(self) -> None:
        self._times.clear()


def restart_delay(backoff: float, crashes: int) -> float:
    """The backoff doubled for each crash in the window after the first, up to 5 minutes."""
    return float(min(backoff * 2 ** max(crashes - 1, 0), MAX_BACKOFF))
