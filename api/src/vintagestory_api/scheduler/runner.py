"""Running jobs: one tracked task per run, at most one run per job, each bounded and recorded."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from vintagestory_api.errors import ExpectedFailure

from .context import bind_run, unbind_run
from .errors import JobAlreadyRunning
from .outcomes import RunEnded
from .runs import (
    RunHistory,
    elapsed_ms,
    new_run_id,
    run_error,
    run_result,
    utc_now,
)
from .schemas import JobRun, RunError, RunOutcome, RunTrigger

logger = structlog.get_logger()

JobCall = Callable[[], Awaitable[Mapping[str, Any] | None]]

# After cancelling a run at shutdown, how long to let it unwind before giving up on it.
CANCEL_WAIT_SECONDS = 3.0


@dataclass
class _Active:
    run: JobRun
    task: asyncio.Task[None] | None = None
    cancel_reason: str | None = None
    quiet: bool = False


class JobRunner:
    """Starts runs on the running loop and records how each one ends.

    A run-now gets a task of its own; a scheduled fire runs in the scheduler library's task
    (`run_here`). Either way the run is tracked here, so both share one "is it running" check,
    and shutdown can wait for them and tell a cancellation apart from a failure.
    """

    def __init__(self, history: RunHistory) -> None:
        self._history = history
        self._active: dict[str, _Active] = {}
        self._version = 0

    @property
    def version(self) -> int:
        """Grows whenever a run starts or stops being current (what `current` answers)."""
        return self._version

    @property
    def running_count(self) -> int:
        return len(self._active)

    def current(self, job_id: str) -> JobRun | None:
        active = self._active.get(job_id)
        return active.run if active is not None else None

    def start(
        self,
        job_id: str,
        call: JobCall,
        *,
        trigger: RunTrigger,
        scheduled_for: datetime | None,
        timeout: float | None,
        quiet: bool = False,
    ) -> tuple[JobRun, asyncio.Task[None]]:
        """Start a run now in a task of its own; raises JobAlreadyRunning if one is in flight."""
        active = self._begin(job_id, trigger, scheduled_for)
        active.quiet = quiet
        task = asyncio.get_running_loop().create_task(
            self._execute(call, active, timeout), name=f"job-run:{job_id}"
        )
        active.task = task
        return active.run, task

    async def run_here(
        self,
        job_id: str,
        call: JobCall,
        *,
        trigger: RunTrigger,
        scheduled_for: datetime | None,
        timeout: float | None,  # noqa: ASYNC109  # the run's own limit, applied in _execute
        quiet: bool = False,
    ) -> JobRun:
        """Run in the calling task and return the finished run; same checks as `start`.

        For a scheduled fire, whose task exists only to run the job: a second task would put
        every run behind all the fires due in the same loop pass (1,000 jobs due together then
        start up to twice as late). The run is tracked, drained and cancelled at shutdown the
        same way; a cancellation of the calling task is recorded as the run's, never raised.
        """
        task = asyncio.current_task()
        assert task is not None
        active = self._begin(job_id, trigger, scheduled_for)
        active.task = task
        active.quiet = quiet
        await self._execute(call, active, timeout)
        return active.run

    def _begin(self, job_id: str, trigger: RunTrigger, scheduled_for: datetime | None) -> _Active:
        if job_id in self._active:
            raise JobAlreadyRunning(job_id)
        started = utc_now()
        run = JobRun(
            run_id=new_run_id(),
            job_id=job_id,
            trigger=trigger,
            outcome="running",
            scheduled_for=scheduled_for,
            started_at=started,
            lateness_ms=elapsed_ms(scheduled_for, started) if scheduled_for else None,
        )
        self._history.record(run)
        active = self._active[job_id] = _Active(run)
        self._version += 1
        return active

    async def _execute(self, call: JobCall, active: _Active, limit: float | None) -> None:
        """Run the job once and record how it ended; never raises."""
        run = active.run
        # A routine frequent job (a metrics sample every 10 s) logs its runs at debug.
        (logger.debug if active.quiet else logger.info)(
            "job_run_started",
            job_id=run.job_id,
            run_id=run.run_id,
            trigger=run.trigger,
            scheduled_for=run.scheduled_for.isoformat() if run.scheduled_for else None,
            lateness_ms=run.lateness_ms,
        )
        scope = asyncio.timeout(limit)
        outcome: RunOutcome = "failed"
        reason: str | None = None
        failure: Exception | None = None
        token = bind_run(run)
        try:
            async with scope:
                value = await call()
            run.result = run_result(value)
            outcome = "succeeded"
        except TimeoutError as exc:
            if scope.expired():
                outcome, reason = "timed_out", f"exceeded its timeout of {limit:g} s"
                run.error = RunError(type="TimeoutError", message=reason)
            else:
                failure = exc
        except RunEnded as ended:
            run.result = run_result(ended.result)
            outcome, reason = ended.outcome, ended.reason
            if ended.outcome == "failed":
                run.error = RunError(type="RunFailed", message=ended.reason[:500])
        except asyncio.CancelledError:
            # Our own task, cancelled at shutdown: a recorded outcome, not an error to re-raise.
            outcome, reason = "cancelled", active.cancel_reason or "cancelled"
        except Exception as exc:
            failure = exc
        finally:
            unbind_run(token)
            if self._active.get(run.job_id) is active:
                del self._active[run.job_id]
                self._version += 1
        if failure is not None:
            run.error = run_error(failure)
        self._finish(run, outcome, reason, failure, quiet=active.quiet)

    def _finish(
        self,
        run: JobRun,
        outcome: RunOutcome,
        reason: str | None,
        exc: Exception | None = None,
        *,
        quiet: bool = False,
    ) -> None:
        if run.outcome != "running":
            return
        run.reason = reason
        self._history.finish(run, outcome, utc_now())
        fields: dict[str, Any] = {
            "job_id": run.job_id,
            "run_id": run.run_id,
            "trigger": run.trigger,
            "outcome": outcome,
            "duration_ms": run.duration_ms,
            "error": run.error.model_dump() if run.error else None,
        }
        if outcome == "succeeded":
            (logger.debug if quiet else logger.info)("job_run_finished", **fields)
        elif outcome == "failed" and isinstance(exc, ExpectedFailure):
            # An upstream API being down is news, not a bug: one line, no traceback.
            logger.warning("job_run_finished", **fields)
        elif outcome == "failed":
            logger.error("job_run_finished", exc_info=exc, **fields)
        else:
            logger.warning("job_run_finished", reason=reason, **fields)

    def record_not_run(
        self, job_id: str, outcome: RunOutcome, scheduled_for: datetime, reason: str
    ) -> JobRun:
        """Record a scheduled fire that did not run (skipped or missed), with the reason."""
        now = utc_now()
        run = JobRun(
            run_id=new_run_id(),
            job_id=job_id,
            trigger="schedule",
            outcome=outcome,
            scheduled_for=scheduled_for,
            finished_at=now,
            lateness_ms=elapsed_ms(scheduled_for, now),
            reason=reason,
        )
        self._history.record(run)
        logger.warning(
            f"job_run_{outcome}",
            job_id=job_id,
            run_id=run.run_id,
            scheduled_for=scheduled_for.isoformat(),
            reason=reason,
        )
        return run

    async def drain(self, grace_seconds: float) -> None:
        """Wait up to the grace time for running jobs, then cancel what is left."""
        active = list(self._active.values())
        tasks = {a.task for a in active if a.task is not None}
        if not tasks:
            return
        logger.info(
            "job_runs_draining", jobs=[a.run.job_id for a in active], grace_seconds=grace_seconds
        )
        if grace_seconds > 0:
            await asyncio.wait(tasks, timeout=grace_seconds)
        pending = {t for t in tasks if not t.done()}
        for a in active:
            if a.task in pending:
                a.cancel_reason = f"still running after the shutdown grace of {grace_seconds:g} s"
                a.task.cancel()
        if not pending:
            return
        await asyncio.wait(pending, timeout=CANCEL_WAIT_SECONDS)
        for a in active:
            if a.task is not None and not a.task.done():
                logger.error("job_run_abandoned", job_id=a.run.job_id, run_id=a.run.run_id)
                self._finish(a.run, "cancelled", "did not stop when cancelled at shutdown")
