"""Dispatch lateness: how late a job body starts after its scheduled time.

Our `SchedulerService` (which records every run) against a bare APScheduler `AsyncIOScheduler`
with the same job defaults. This is the one place outside the scheduler package that imports
APScheduler: the baseline has to be the library itself.

Both run in this process, one fresh event loop per trial, alternating. Every job is an async
no-op that notes `time.time()`; its scheduled times are known (first fire `t0 + offset`, then
every `interval` seconds), so lateness is computed the same way for both.
"""

from __future__ import annotations

import asyncio
import gc
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bench.report import Row, median, percentile
from vintagestory_api.scheduler.run_store import RunStore
from vintagestory_api.scheduler.service import SchedulerService

# "db": ours writing every run to the run database, as the served API does.
Kind = Literal["ours", "bare", "db"]

JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 60}


@dataclass(frozen=True)
class Scenario:
    jobs: int
    spread: bool

    @property
    def label(self) -> str:
        when = "spread over 1 s" if self.spread else "same instant"
        return f"{self.jobs:,} jobs, {when}"


SCENARIOS = (
    Scenario(10, spread=False),
    Scenario(10, spread=True),
    Scenario(1000, spread=False),
    Scenario(1000, spread=True),
)


class _Recorder:
    def __init__(self, expected: int) -> None:
        self.starts: list[tuple[int, float]] = []
        self.expected = expected
        self.t0 = 0.0
        self.done = asyncio.Event()

    async def noop(self, index: int) -> None:
        self.starts.append((index, time.time()))
        if len(self.starts) >= self.expected:
            self.done.set()


def _at(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


async def _ours(
    scenario: Scenario, interval: int, t0: float, rec: _Recorder, store: RunStore | None = None
) -> None:
    service = SchedulerService(default_timezone=UTC, shutdown_grace_seconds=5, run_store=store)
    await service.start()
    try:
        for i in range(scenario.jobs):
            # First fires aligned with the bare scheduler's start dates below.
            service.add_interval_job(
                rec.noop,
                interval,
                f"job{i}",
                args=(i,),
                first_run_at=_at(t0 + _offset(scenario, i, interval)),
            )
        await _wait(scenario, t0, rec)
    finally:
        await service.shutdown()


async def _bare(scenario: Scenario, interval: int, t0: float, rec: _Recorder) -> None:
    scheduler = AsyncIOScheduler(job_defaults=JOB_DEFAULTS, timezone=UTC)
    scheduler.start()
    try:
        for i in range(scenario.jobs):
            start = _at(t0 + _offset(scenario, i, interval))
            trigger = IntervalTrigger(seconds=interval, start_date=start, timezone=UTC)
            scheduler.add_job(rec.noop, trigger, args=(i,), id=f"job{i}")
        await _wait(scenario, t0, rec)
    finally:
        scheduler.shutdown(wait=False)


async def _wait(scenario: Scenario, t0: float, rec: _Recorder) -> None:
    if time.time() >= t0:
        raise RuntimeError("adding the jobs took longer than the lead time; raise the lead")
    deadline = t0 + rec.expected / scenario.jobs * 1.0 + 10
    await asyncio.wait_for(rec.done.wait(), timeout=deadline - time.time())
    # Let the last job's wrapper task (APScheduler's or ours) finish before shutting down.
    await asyncio.sleep(0.05)


def _offset(scenario: Scenario, index: int, interval: int) -> float:
    return index * interval / scenario.jobs if scenario.spread else 0.0


def _trial(kind: Kind, scenario: Scenario, interval: int, fires: int) -> list[float]:
    """Lateness of every fire in one trial, in milliseconds."""
    rec = _Recorder(scenario.jobs * fires)

    async def main() -> None:
        # Lead time for adding the jobs; generous so no trial starts already late.
        rec.t0 = time.time() + 0.3 + scenario.jobs * 0.001
        if kind == "db":
            await _ours(scenario, interval, rec.t0, rec, store)
            return
        runner: Callable[..., Coroutine[Any, Any, None]] = _ours if kind == "ours" else _bare
        await runner(scenario, interval, rec.t0, rec)

    gc.collect()
    with tempfile.TemporaryDirectory(prefix="vs-bench-runs-") as workdir:
        store = RunStore.open(Path(workdir) / "runs.db") if kind == "db" else None
        try:
            asyncio.run(main())
        finally:
            if store is not None:
                store.close()
    t0 = rec.t0
    lateness = []
    for index, started in rec.starts:
        base = t0 + _offset(scenario, index, interval)
        fire = max(0, round((started - base) / interval))
        lateness.append((started - (base + fire * interval)) * 1000)
    return lateness


def run(rounds: int, fires: int, interval: int = 1) -> list[Row]:
    rows: list[Row] = []
    for scenario in SCENARIOS:
        stats: dict[Kind, dict[str, list[float]]] = {
            kind: {"p50": [], "p99": [], "max": []} for kind in ("ours", "bare", "db")
        }
        for n in range(rounds):
            order: tuple[Kind, ...] = (
                ("ours", "bare", "db") if n % 2 == 0 else ("db", "bare", "ours")
            )
            for kind in order:
                samples = _trial(kind, scenario, interval, fires)
                stats[kind]["p50"].append(percentile(samples, 50))
                stats[kind]["p99"].append(percentile(samples, 99))
                stats[kind]["max"].append(max(samples))
        for stat in ("p50", "p99", "max"):
            targeted = stat == "p99"
            rows.append(
                Row(
                    section="dispatch lateness",
                    name=f"{scenario.label}: {stat}",
                    unit="ms",
                    ours=median(stats["ours"][stat]),
                    baseline=median(stats["bare"][stat]),
                    baseline_name="bare AsyncIOScheduler",
                    compare="ratio_max",
                    target=1.2 if targeted else float("nan"),
                    rounds=rounds,
                    detail={"per_round": {k: v[stat] for k, v in stats.items()}},
                )
            )
        if not scenario.spread:
            # The run database's cost on the dispatch path: ours with it against ours without.
            rows.append(
                Row(
                    section="dispatch lateness",
                    name=f"{scenario.label}: p99 with the run database",
                    unit="ms",
                    ours=median(stats["db"]["p99"]),
                    baseline=median(stats["ours"]["p99"]),
                    baseline_name="same scheduler, no database",
                    compare="ratio_max",
                    target=1.1,
                    rounds=rounds,
                    detail={"per_round": {k: stats[k]["p99"] for k in ("db", "ours")}},
                )
            )
    return rows
