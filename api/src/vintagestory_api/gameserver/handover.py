"""Stopping and starting the game server for whoever holds its lifecycle (a version switch).

While the lifecycle is held, no start, stop or restart request interleaves, and the
supervisor's own start deadline stands aside (it leaves a held server alone). So the holder
waits for readiness itself, with the same `server_start_timeout_seconds`, and stops a start
that is not ready in time, recording it as the deadline would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from vintagestory_api.errors import ApiError

from .exits import GameRun, Timings
from .stopping import escalate_stop
from .supervisor import Supervisor


async def stop_and_wait(supervisor: Supervisor, timings: Callable[[], Timings], role: str) -> None:
    """The graceful stop (the `/stop` escalation), until the process has exited."""
    run = supervisor.run
    if run is None:
        return
    supervisor.begin_stop(run, role)
    # Shielded: if the API shuts down meanwhile, the escalation still ends the process (the
    # supervisor's close then only waits for the exit).
    await asyncio.shield(asyncio.ensure_future(escalate_stop(run, timings())))
    await run.exited.wait()


async def start_and_wait(
    supervisor: Supervisor, timings: Callable[[], Timings], holder: str, role: str
) -> str | None:
    """Start and wait until it is ready: None, or why it is not (it is then stopped)."""
    try:
        run = await supervisor.launch_held(holder, role)
    except ApiError as exc:
        return exc.message
    timeout = timings().start_timeout
    if await _ready_within(run, timeout):
        return None
    if run.exited.is_set():
        last = supervisor.last_exit
        code = f"exit {last.code}" if last and last.code is not None else "a signal"
        error = f": {last.error.message}" if last and last.error else ""
        return f"it exited ({code}) before it was ready{error}"
    supervisor.record("start_timeout", detail=f"not ready after {timeout:g} s")
    await stop_and_wait(supervisor, timings, "start_timeout")
    return (
        f"it was not ready within {timeout:g} s (server_start_timeout_seconds), so it was stopped"
    )


async def _ready_within(run: GameRun, seconds: float) -> bool:
    waits = [asyncio.ensure_future(run.ready.wait()), asyncio.ensure_future(run.exited.wait())]
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
    return run.ready.is_set() and not run.exited.is_set()
