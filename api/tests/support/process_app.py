"""A test-only app: the real app plus one slow job, served through the real entry point.

`python -m tests.process_app` runs `vintagestory_api.__main__.main` (settings check, logging,
signal handling, exit code) with this module's factory, which wraps the real lifespan to add
a paused job named `sleeper` that sleeps for `VS_TEST_JOB_SECONDS` (default 2) when run.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from vintagestory_api.__main__ import main
from vintagestory_api.app import create_app as create_real_app
from vintagestory_api.scheduler.service import SchedulerService

JOB_ID = "sleeper"
JOB_SECONDS_ENV = "VS_TEST_JOB_SECONDS"


async def sleeper(seconds: float) -> dict[str, Any]:
    await asyncio.sleep(seconds)
    return {"slept_seconds": seconds}


def create_app() -> FastAPI:
    app = create_real_app()
    seconds = float(os.environ.get(JOB_SECONDS_ENV, "2"))
    real_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with real_lifespan(app) as state:
            scheduler: SchedulerService = app.state.scheduler
            # Paused with a long interval: it runs only when a test asks for it.
            scheduler.add_interval_job(sleeper, 3600, JOB_ID, args=(seconds,), paused=True)
            yield state

    app.router.lifespan_context = lifespan
    return app


if __name__ == "__main__":
    sys.exit(main(app_factory="tests.support.process_app:create_app"))
