"""After a crash: the crash-loop rule and the automatic restart with a doubling backoff.

Three crashes within ten minutes stop the retries until an admin starts it. A restart that
comes due while another domain holds the lifecycle waits for the release: a server starting on
a world being swapped (a backup, a restore) would load half of it.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from .exits import CRASH_LOOP_COUNT, CRASH_LOOP_WINDOW, CrashLoop, Timings, restart_delay
from .guard import LifecycleGuard


class AutoRestart:
    def __init__(self, timings: Callable[[], Timings], guard: LifecycleGuard) -> None:
        self._timings = timings
        self._guard = guard
        self.crash_loop = False
        self.restart_at: datetime | None = None
        self._window = CrashLoop()
        self._task: asyncio.Task[None] | None = None

    def reset(self) -> None:
        """An admin's start: the crashes before it no longer count towards giving up."""
        self.crash_loop = False
        self._window.clear()

    def crashed(self, relaunch: Callable[[], Coroutine[Any, Any, None]]) -> str | None:
        """Count a crash and schedule `relaunch`; why it gave up instead, if it did."""
        count = self._window.crashed()
        if count >= CRASH_LOOP_COUNT:
            self.crash_loop = True
            return f"{count} crashes within {CRASH_LOOP_WINDOW / 60:g} minutes"
        timings = self._timings()
        if not timings.auto_restart:
            return None
        delay = restart_delay(timings.backoff, count)
        self.restart_at = datetime.fromtimestamp(time.time() + delay, UTC)
        # A fresh context: the restart must not log with the id of whatever request was current.
        self._task = asyncio.get_running_loop().create_task(
            self._after(delay, relaunch), context=contextvars.Context()
        )
        return None

    async def _after(self, delay: float, relaunch: Callable[[], Coroutine[Any, Any, None]]) -> None:
        await asyncio.sleep(delay)
        await self._guard.wait_released()
        self._task = None
        self.restart_at = None
        await relaunch()

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.restart_at = None
