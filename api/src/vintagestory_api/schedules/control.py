"""One schedule run in progress: what it is doing now, and its cancellation."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

from .schemas import CurrentRun, StepResult


class RunCancelled(Exception):
    """Raised at a run's next wait once someone cancelled it."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class RunControl:
    """Shared by the run (which updates it) and the routes (which read and cancel it)."""

    def __init__(self, action_at: datetime) -> None:
        self.view = CurrentRun(started_at=utc_now(), action_at=action_at, phase="steps")
        self.cancelled_by: str | None = None
        self._cancel = asyncio.Event()
        self.finished = asyncio.Event()

    @property
    def cancellable(self) -> bool:
        """Until its disruptive action begins (then stopping half-way would be worse)."""
        return self.view.phase != "action" and not self.finished.is_set()

    def cancel(self, role: str) -> None:
        self.cancelled_by = role
        self._cancel.set()

    def check(self) -> None:
        if self._cancel.is_set():
            raise RunCancelled

    async def pause_until(self, moment: datetime) -> None:
        """Wait until `moment`; raises `RunCancelled` as soon as the run is cancelled."""
        self.check()
        delay = (moment - utc_now()).total_seconds()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._cancel.wait()
        self.check()

    def record(self, result: StepResult) -> None:
        self.view.steps = [*self.view.steps, result]
