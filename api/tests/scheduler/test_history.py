"""Run history stays bounded however many runs a job has."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from tests.support.fakes import fail
from vintagestory_api.scheduler.schemas import JobRun
from vintagestory_api.scheduler.service import SchedulerService


@contextmanager
def logs_dropped() -> Iterator[None]:
    """Drop log events where they are made, so only the scheduler's own memory is measured."""

    def drop(*_: Any) -> Any:
        raise structlog.DropEvent

    saved = structlog.get_config()
    structlog.configure(processors=[drop])
    try:
        yield
    finally:
        structlog.configure(**saved)


async def test_five_thousand_failing_runs_keep_history_at_its_bound() -> None:
    scheduler = SchedulerService(default_timezone=ZoneInfo("UTC"), history_size=50)
    finished = asyncio.Event()

    def on_run(_: JobRun) -> None:
        finished.set()

    scheduler.add_run_listener(on_run)
    await scheduler.start()
    scheduler.add_interval_job(fail, 3600, "flaky")

    async def run_failing(times: int) -> None:
        for _ in range(times):
            finished.clear()
            scheduler.run_now("flaky")
            await asyncio.wait_for(finished.wait(), timeout=5)

    try:
        with logs_dropped():
            # Traced from before the warm-up, so the history is full of traced runs at both
            # measurements and only growth beyond the bound counts.
            tracemalloc.start()
            await run_failing(500)
            gc.collect()
            before, _ = tracemalloc.get_traced_memory()
            await run_failing(4500)
            gc.collect()
            after, _ = tracemalloc.get_traced_memory()
            tracemalloc.stop()
    finally:
        await scheduler.shutdown()

    assert len(scheduler.get_runs("flaky", limit=10_000)) == 50
    assert scheduler.get_job("flaky").counts.failed == 5000
    # 4,500 more runs, each with an exception and a traceback: keeping even one small object
    # per run would add hundreds of kilobytes.
    assert after - before < 100_000, f"grew by {after - before} bytes"
