"""Job functions and run watchers shared by the scheduler tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from vintagestory_api.scheduler.schemas import JobRun, RunOutcome


class RunWatcher:
    """A run listener that keeps finished runs and lets a test wait for one, with a deadline."""

    def __init__(self) -> None:
        self.runs: list[JobRun] = []
        self._changed = asyncio.Event()

    def __call__(self, run: JobRun) -> None:
        self.runs.append(run)
        self._changed.set()

    def outcomes(self, job_id: str) -> list[RunOutcome]:
        return [run.outcome for run in self.runs if run.job_id == job_id]

    async def wait_for(
        self, predicate: Callable[[list[JobRun]], bool], timeout: float = 10
    ) -> list[JobRun]:
        async with asyncio.timeout(timeout):
            while not predicate(self.runs):
                self._changed.clear()
                await self._changed.wait()
        return self.runs

    async def wait_outcome(
        self, job_id: str, outcome: RunOutcome, count: int = 1, timeout: float = 10
    ) -> list[JobRun]:
        def enough(runs: list[JobRun]) -> bool:
            return sum(r.job_id == job_id and r.outcome == outcome for r in runs) >= count

        await self.wait_for(enough, timeout)
        return [r for r in self.runs if r.job_id == job_id and r.outcome == outcome]


class GatedJob:
    """A job that blocks until released, and records how many of its runs overlapped."""

    def __init__(self) -> None:
        self.calls = 0
        self.active = 0
        self.max_active = 0
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def run(self) -> dict[str, Any]:
        self.calls += 1
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        self.started.set()
        try:
            await self.release.wait()
        finally:
            self.active -= 1
        return {"calls": self.calls}


async def succeed() -> dict[str, Any]:
    return {"ok": True}


async def fail() -> None:
    raise RuntimeError("the upstream API said no")


async def sleep_for(seconds: float) -> dict[str, Any]:
    await asyncio.sleep(seconds)
    return {"slept": seconds}


async def wait_until(predicate: Callable[[], bool], timeout: float = 10) -> None:
    """Poll `predicate` on the event loop until it holds; fail after `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)
