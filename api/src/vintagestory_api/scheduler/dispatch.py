"""What happens when APScheduler says a job is due: our run in its task, and the fires that did
not run (skipped, missed) recorded from its events."""

from __future__ import annotations

import asyncio
import functools
from datetime import datetime, timedelta
from typing import Any, Protocol

from .runner import JobRunner
from .runs import utc_now
from .schemas import RunTrigger
from .specs import JobSpec


class _Jobs(Protocol):
    """The part of `SchedulerService` a fire needs."""

    @property
    def accepting(self) -> bool: ...

    def spec(self, job_id: str) -> JobSpec | None: ...

    def timeout_for(self, spec: JobSpec) -> float | None: ...

    def changed(self) -> None: ...


class Dispatcher:
    def __init__(self, jobs: _Jobs, runner: JobRunner, misfire_grace_seconds: float) -> None:
        self._jobs = jobs
        self._runner = runner
        self._misfire_grace = misfire_grace_seconds
        # job id -> the fire time APScheduler just submitted, for `fire` to pick up.
        self._due: dict[str, datetime] = {}
        # job id -> the due time of the run it missed while the API was down, for its first fire.
        self._catch_up: dict[str, datetime] = {}
        self._fire_tasks: set[asyncio.Task[Any]] = set()

    def catch_up(self, job_id: str, due: datetime) -> None:
        """Record the job's next fire as the catch-up of the run due at `due`."""
        self._catch_up[job_id] = due

    def forget(self, job_id: str) -> None:
        self._due.pop(job_id, None)
        self._catch_up.pop(job_id, None)

    async def wait_for_fires(self, timeout: float) -> None:  # noqa: ASYNC109  # a bound, not a deadline
        """Let APScheduler's fire tasks return (they only await our runs) before it cancels them,
        or it would log each cancellation as a job error."""
        if self._fire_tasks:
            await asyncio.wait(set(self._fire_tasks), timeout=timeout)

    async def fire(self, job_id: str) -> None:
        """What APScheduler calls when a job is due: start our run and wait for it."""
        scheduled_for = self._due.pop(job_id, None) or utc_now()
        missed = self._catch_up.pop(job_id, None)
        trigger: RunTrigger = "schedule" if missed is None else "catch_up"
        if missed is not None:
            scheduled_for = missed
        spec = self._jobs.spec(job_id)
        if spec is None:
            return
        current = self._runner.current(job_id)
        if not self._jobs.accepting or current is not None:
            reason = (
                "the scheduler is stopping"
                if current is None
                else f"the {current.trigger} run {current.run_id} was still running"
            )
            self._runner.record_not_run(job_id, "skipped", scheduled_for, reason)
            return
        task = asyncio.current_task()
        assert task is not None
        self._fire_tasks.add(task)
        call = functools.partial(spec.func, *spec.args)
        if spec.lead_seconds is not None:
            call = functools.partial(
                call, action_at=scheduled_for + timedelta(seconds=spec.lead_seconds)
            )
        try:
            # The run happens in this task, so APScheduler's max_instances count stays honest
            # while it lasts; APScheduler cancels its tasks only in its own shutdown, which
            # comes after ours has drained the runs.
            await self._runner.run_here(
                spec.job_id,
                call,
                trigger=trigger,
                scheduled_for=scheduled_for,
                timeout=self._jobs.timeout_for(spec),
                quiet=spec.quiet,
            )
        finally:
            self._fire_tasks.discard(task)

    def on_submitted(self, event: Any) -> None:
        # Dispatched before the submitted task first runs, so `fire` finds its scheduled time.
        self._due[event.job_id] = event.scheduled_run_times[-1]
        # The store has counted the new next fire time already; counted here as well so that
        # nothing depends on the order in which APScheduler updates and reports.
        self._jobs.changed()

    def on_max_instances(self, event: Any) -> None:
        self._jobs.changed()
        reason = "the previous scheduled run was still running"
        self._runner.record_not_run(event.job_id, "skipped", event.scheduled_run_times[-1], reason)

    def on_missed(self, event: Any) -> None:
        self._jobs.changed()
        self._due.pop(event.job_id, None)
        reason = f"could not start within the misfire grace time of {self._misfire_grace:g} s"
        self._runner.record_not_run(event.job_id, "missed", event.scheduled_run_time, reason)
