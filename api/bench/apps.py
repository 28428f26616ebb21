"""Ours as the bench serves it: `python -m bench.apps` runs the service's own `main` with
`create_bench_app`, which wraps the real `create_app` and lifespan (as tests/process_app.py
does) and adds `BENCH_JOBS` jobs once the real lifespan has started:

- `BENCH_JOB_MODE=noop` (default): async no-ops on a 1 h interval, each run once at startup so
  that every job in `GET /jobs` carries a last run and counts, as in a long-running service.
- `BENCH_JOB_MODE=load`: paused jobs on a 1 s interval that, once resumed, each GET
  `BENCH_STUB_URL` (a slow local stub) and then burn `BENCH_CPU_MS` of CPU in a worker thread.

It also adds `POST /bench/churn?runs=N`, which runs every bench job N times back to back through
`SchedulerService.run_now`, to fill the run history as hours of firing would.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import httpx
from fastapi import FastAPI, Query

from vintagestory_api.__main__ import main
from vintagestory_api.app import create_app
from vintagestory_api.scheduler.service import SchedulerService

CHURN_POLL_LIMIT = 10_000


async def noop() -> None:
    return None


async def io_and_cpu(client: httpx.AsyncClient, url: str, cpu_seconds: float) -> dict[str, Any]:
    response = await client.get(url)
    response.raise_for_status()
    await asyncio.to_thread(_spin, cpu_seconds)
    return {"bytes": len(response.content)}


def _spin(seconds: float) -> None:
    """Pure-Python CPU work: holds the GIL the way parsing or hashing would."""
    deadline = time.perf_counter() + seconds
    total = 0
    while time.perf_counter() < deadline:
        total += sum(range(200))


def create_bench_app() -> FastAPI:
    app = create_app()
    count = int(os.environ.get("BENCH_JOBS", "50"))
    mode = os.environ.get("BENCH_JOB_MODE", "noop")
    stub_url = os.environ.get("BENCH_STUB_URL", "")
    cpu_seconds = float(os.environ.get("BENCH_CPU_MS", "5")) / 1000
    real_lifespan = app.router.lifespan_context
    job_ids = [f"bench_job_{i:03d}" for i in range(count)]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with real_lifespan(app) as state, httpx.AsyncClient(timeout=30) as client:
            scheduler: SchedulerService = app.state.scheduler
            for job_id in job_ids:
                if mode == "load":
                    scheduler.add_interval_job(
                        io_and_cpu, 1, job_id, args=(client, stub_url, cpu_seconds), paused=True
                    )
                else:
                    scheduler.add_interval_job(noop, 3600, job_id, run_immediately=True)
            yield state

    app.router.lifespan_context = lifespan

    @app.post("/bench/churn", include_in_schema=False)
    async def churn(runs: Annotated[int, Query(ge=1, le=100_000)] = 100) -> dict[str, Any]:
        scheduler: SchedulerService = app.state.scheduler
        started = time.perf_counter()
        for _ in range(runs):
            for job_id in job_ids:
                scheduler.run_now(job_id)
            for _ in range(CHURN_POLL_LIMIT):
                if scheduler.health().running_jobs == 0:
                    break
                await asyncio.sleep(0)
        seconds = time.perf_counter() - started
        return {"runs": runs * len(job_ids), "seconds": round(seconds, 3)}

    return app


if __name__ == "__main__":
    # Through the service's own entry point: settings check, logging, signals, exit code.
    sys.exit(main("bench.apps:create_bench_app"))
