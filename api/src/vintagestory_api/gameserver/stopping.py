"""Stopping the game server by escalation, and reading its output to the end of the process.

`/stop` when it is running (the game's own save path), SIGTERM while it is starting (a starting
server only queues /stop); then SIGTERM again after `stop_timeout`, then SIGKILL after
`kill_timeout`. The step that ended it is left in `run.stop_step`.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

from .console import ConsoleBuffer, pump_stderr, pump_stdout
from .exits import GameRun, Timings

# Output still open after the exit means a grandchild holds the pipe; stop waiting then.
DRAIN_TIMEOUT = 5.0


async def escalate_stop(run: GameRun, timings: Timings) -> None:
    if run.ready_at is not None:
        run.stop_step = "stop_command"
        with contextlib.suppress(ConnectionError):
            await run.writer.send("/stop")
    else:
        # A starting server queues /stop until it is ready; SIGTERM aborts the start.
        run.stop_step = "sigterm"
        run.process.send_signal(signal.SIGTERM)
    if await _exited_within(run, timings.stop_timeout):
        return
    run.stop_step = "sigterm"
    run.process.send_signal(signal.SIGTERM)
    if await _exited_within(run, timings.kill_timeout):
        return
    run.stop_step = "sigkill"
    run.process.send_signal(signal.SIGKILL)


async def _exited_within(run: GameRun, seconds: float) -> bool:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await run.exited.wait()
    return run.exited.is_set()


async def watch_output(run: GameRun, console: ConsoleBuffer) -> int:
    """Pump stdout and stderr into the console until the process exits; its exit status.

    The last lines ("Stopped the server!") are read before the exit is declared; the run's
    other tasks (start deadline, player polls) are cancelled.
    """
    pumps = [
        asyncio.create_task(pump_stdout(run.process.stdout, console)),
        asyncio.create_task(pump_stderr(run.process.stderr, console)),
    ]
    status = await run.process.wait()
    _, pending = await asyncio.wait(pumps, timeout=DRAIN_TIMEOUT)
    for task in pending:
        task.cancel()
    for task in list(run.tasks):
        if task is not asyncio.current_task():
            task.cancel()
    return status
