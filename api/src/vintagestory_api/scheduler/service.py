"""SchedulerService: APScheduler 3 behind a typed API in which every run is recorded.

With `triggers.py`, the only module that imports apscheduler. APScheduler 3.x ships no type
information, so pyproject tells mypy to treat it as `Any`; everything it returns is converted to
our own models here and its exceptions are translated to ours.

APScheduler decides *when* a job fires; the run itself is ours (`runner.py`). Every
execution, scheduled or manual, is tracked per job, bounded with the job's timeout and recorded
by our runner: a run-now in a task of its own, a scheduled fire in the task APScheduler made for
it (a second task per fire would delay every run behind all the fires due with it). That is
why run-now never goes through `modify_job(next_run_time=...)` (it would un-pause paused jobs,
shift interval jobs and be dropped while the job runs), and why shutdown waits for runs itself
(`AsyncIOScheduler.shutdown(wait=True)` does not wait: it cancels running coroutines and
reports the cancellation as a job error).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

import structlog
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, EVENT_JOB_SUBMITTED

from vintagestory_api.kit.schemas import ComponentHealth

from .cron import timezone_name
from .dispatch import Dispatcher
from .errors import JobNotFound, JobNotResumable, SchedulerNotRunning
from .registry import JobRegistry
from .run_store import RunStore
from .runner import CANCEL_WAIT_SECONDS, JobRunner
from .runs import DEFAULT_MAX_AGE, RunHistory, RunListener, page_runs, utc_now
from .schemas import JobDetail, JobInfo, JobRun, SchedulerHealth
from .specs import (
    JobFunc,
    JobSpec,
    job_info,
    local_time,
    parse_schedule,
)
from .triggers import (
    VersionedJobStore,
    first_fire,
    make_scheduler,
    make_trigger,
    require_first_fire,
    trigger_fire_times,
)

__all__ = ["JobFunc", "SchedulerService"]

logger = structlog.get_logger()

NEXT_RUN_TIMES = 5
_MEMORY_ONLY = ComponentHealth(status="ok", reason="kept in memory only")


class SchedulerService(JobRegistry):
    def __init__(
        self,
        *,
        default_timezone: tzinfo,
        history_size: int = 50,
        default_timeout_seconds: float | None = 300,
        shutdown_grace_seconds: float = 30,
        misfire_grace_seconds: int = 60,
        run_store: RunStore | None = None,
        history_max_age: timedelta = DEFAULT_MAX_AGE,
    ) -> None:
        self._default_tz = default_timezone
        self._default_timeout = default_timeout_seconds
        self._grace = shutdown_grace_seconds
        self._misfire_grace = misfire_grace_seconds
        # With a store, the history starts from the run database: runs survive restarts.
        self._history = RunHistory(history_size, run_store, max_age=history_max_age)
        self._runner = JobRunner(self._history)
        self._jobs: dict[str, JobSpec] = {}
        self._accepting = False
        # Previews run in worker threads; two at a time keeps a burst of them from crowding
        # the event loop out of the interpreter lock.
        self.preview_slot = asyncio.Semaphore(2)
        # Changes to what list_jobs() shows that the store, history and runner do not count.
        self._version = 0
        # list_jobs() as last built, and the state_version it was built at.
        self._listed: tuple[int, list[JobInfo]] | None = None
        self._store = VersionedJobStore()
        self._scheduler = make_scheduler(self._store, default_timezone, misfire_grace_seconds)
        self._dispatch = Dispatcher(self, self._runner, misfire_grace_seconds)
        self._scheduler.add_listener(self._dispatch.on_submitted, EVENT_JOB_SUBMITTED)
        self._scheduler.add_listener(self._dispatch.on_max_instances, EVENT_JOB_MAX_INSTANCES)
        self._scheduler.add_listener(self._dispatch.on_missed, EVENT_JOB_MISSED)

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._accepting and bool(self._scheduler.running)

    @property
    def run_store(self) -> RunStore | None:
        """The run database the history is written to, if any."""
        return self._history.store

    @property
    def default_timezone(self) -> tzinfo:
        return self._default_tz

    @property
    def state_version(self) -> int:
        """Grows on every change that can alter a `JobInfo` of `list_jobs()`.

        A sum of counters that only grow: the jobs and settings kept here, APScheduler's job
        store (next fire times, paused), the run history (last runs, counts) and the runner
        (which runs are in flight).
        """
        return self._version + self._store.version + self._history.version + self._runner.version

    def changed(self) -> None:
        """Count a change to what `list_jobs()` shows (for the job-list cache)."""
        self._version += 1

    @property
    def accepting(self) -> bool:
        """False from the start of shutdown on: due fires are then skipped, not run."""
        return self._accepting

    def spec(self, job_id: str) -> JobSpec | None:
        return self._jobs.get(job_id)

    def timeout_for(self, spec: JobSpec) -> float | None:
        """The effective timeout of the next run of `spec`."""
        return spec.timeout_seconds if spec.timeout_seconds is not None else self._default_timeout

    async def start(self) -> None:
        self._scheduler.start()
        self._accepting = True
        logger.info(
            "scheduler_started", timezone=timezone_name(self._default_tz), jobs=len(self._jobs)
        )

    async def shutdown(self) -> None:
        """Stop new runs, let running ones finish within the grace time, cancel the rest."""
        if not self._scheduler.running:
            return
        self._accepting = False
        self._scheduler.pause()
        # One loop pass for fires APScheduler has submitted but whose tasks have not run yet:
        # they now record themselves as skipped. Left pending, its shutdown would cancel them and
        # log each as a job error.
        await asyncio.sleep(0)
        await self._runner.drain(self._grace)
        # APScheduler's own tasks only await our runs; let them return before it cancels them,
        # or it would log each cancellation as a job error.
        await self._dispatch.wait_for_fires(CANCEL_WAIT_SECONDS)
        self._scheduler.shutdown(wait=False)
        logger.info("scheduler_stopped")

    def health(self) -> SchedulerHealth:
        store = self._history.store
        return SchedulerHealth(
            status="running" if self.running else "stopped",
            job_count=len(self._jobs),
            running_jobs=self._runner.running_count,
            run_history=store.health if store is not None else _MEMORY_ONLY,
        )

    # -- reading ---------------------------------------------------------------------------

    def list_jobs(self) -> list[JobInfo]:
        """Every job by id; built again only after a change (`state_version`).

        The `JobInfo` objects are shared between callers until then: read them, never change
        them.
        """
        version = self.state_version
        if self._listed is None or self._listed[0] != version:
            jobs = [self._info(self._jobs[job_id]) for job_id in sorted(self._jobs)]
            self._listed = (version, jobs)
        return list(self._listed[1])

    def get_job(self, job_id: str) -> JobDetail:
        spec = self._spec(job_id)
        info = self._info(spec)
        job = self._scheduler.get_job(job_id)
        times: list[datetime] = []
        if job is not None and info.next_run_time is not None:
            times = trigger_fire_times(job.trigger, job.next_run_time, NEXT_RUN_TIMES)
        local = [local_time(t, spec.schedule.tz) for t in times]
        return JobDetail(**info.model_dump(), next_run_times=local)

    def get_runs(self, job_id: str, limit: int = 50) -> list[JobRun]:
        """Newest first; also for a removed job whose runs are still in the history."""
        if job_id not in self._jobs and not self._history.knows(job_id):
            raise JobNotFound(job_id)
        return self._history.runs(job_id, limit)

    async def page_runs(
        self,
        job_id: str,
        *,
        limit: int = 50,
        before: str | datetime | None = None,
        outcome: str | None = None,
    ) -> list[JobRun]:
        """A page of a job's runs, newest first, older than `before` (a run id or a time),
        only `outcome` if given; the newest page from memory, deeper ones from the database."""
        if job_id not in self._jobs and not self._history.knows(job_id):
            raise JobNotFound(job_id)
        return await page_runs(self._history, job_id, limit=limit, before=before, outcome=outcome)

    def current_run(self, job_id: str) -> JobRun | None:
        """The job's run in flight, as it is now."""
        run = self._runner.current(job_id)
        return run.model_copy() if run is not None else None

    def last_run(self, job_id: str) -> JobRun | None:
        return self._history.last(job_id)

    def next_fire_time(self, job_id: str) -> datetime | None:
        """When the job fires next (aware, UTC); None when paused or never again."""
        self._spec(job_id)
        next_run = self._next_run_time(job_id)
        return next_run.astimezone(UTC) if isinstance(next_run, datetime) else None

    def fire_times_until(self, job_id: str, end: datetime, limit: int = 1000) -> list[datetime]:
        """The job's coming fire times up to `end` (at most `limit`), from its live trigger."""
        self._spec(job_id)
        job = self._scheduler.get_job(job_id)
        first = self.next_fire_time(job_id)
        if job is None or first is None:
            return []
        times: list[datetime] = []
        fire: datetime | None = first
        while fire is not None and fire <= end and len(times) < limit:
            times.append(fire.astimezone(UTC))
            fire = job.trigger.get_next_fire_time(fire, fire)
        return times

    def wake(self) -> None:
        """Look at due jobs now, e.g. after the host clock jumped (APScheduler otherwise sleeps
        until the fire time it computed from the old clock)."""
        self._scheduler.wakeup()

    def _spec(self, job_id: str) -> JobSpec:
        spec = self._jobs.get(job_id)
        if spec is None:
            raise JobNotFound(job_id)
        return spec

    def _next_run_time(self, job_id: str) -> datetime | bool | None:
        """The APScheduler job's next fire time; None when paused, False before start()."""
        job = self._scheduler.get_job(job_id)
        raw: datetime | bool | None = getattr(job, "next_run_time", False) if job else None
        return raw

    def _info(self, spec: JobSpec) -> JobInfo:
        return job_info(
            spec,
            self._next_run_time(spec.job_id),
            running=self._runner.current(spec.job_id) is not None,
            timeout_seconds=self.timeout_for(spec),
            last_run=self._history.last(spec.job_id),
            counts=self._history.counts(spec.job_id),
        )

    # -- steering --------------------------------------------------------------------------

    def pause_job(self, job_id: str) -> JobInfo:
        spec = self._spec(job_id)
        if self._next_run_time(job_id) is not None:
            self._scheduler.pause_job(job_id)
            self.changed()
            logger.info("job_paused", job_id=job_id)
        return self._info(spec)

    def resume_job(self, job_id: str) -> JobInfo:
        spec = self._spec(job_id)
        if self._next_run_time(job_id) is None:
            # APScheduler's resume_job deletes a job without a future fire time; check first.
            job = self._scheduler.get_job(job_id)
            now = datetime.now(spec.schedule.tz)
            first = first_fire(job.trigger, now) if job is not None else None
            if first is not None and spec.schedule.at is not None and first <= now:
                # A one-off time already passed: resuming would run it late, not "resume" it.
                first = None
            if first is None:
                raise JobNotResumable(
                    f"job '{job_id}' has no future fire time; give it a new schedule first"
                )
            self._scheduler.modify_job(job_id, next_run_time=first)
            self.changed()
            logger.info("job_resumed", job_id=job_id, next_run_time=first.isoformat())
        return self._info(spec)

    def reschedule(
        self,
        job_id: str,
        *,
        interval_seconds: int | None = None,
        cron: str | None = None,
        timezone: str | None = None,
    ) -> JobInfo:
        """Give a job a new schedule; a paused job stays paused, a run in flight goes on."""
        spec = self._spec(job_id)
        schedule = parse_schedule(
            interval_seconds=interval_seconds,
            cron=cron,
            timezone=timezone,
            default_tz=spec.schedule.tz,
        )
        trigger = make_trigger(schedule, lead_seconds=spec.lead_seconds)
        first = require_first_fire(trigger, schedule.tz, utc_now())
        if self._next_run_time(job_id) is None:
            # APScheduler's reschedule_job would un-pause it.
            self._scheduler.modify_job(job_id, trigger=trigger)
        else:
            self._scheduler.modify_job(job_id, trigger=trigger, next_run_time=first)
        new = self._jobs[job_id] = dataclasses.replace(spec, schedule=schedule)
        self.changed()
        old_text, new_text = spec.schedule.describe(), schedule.describe()
        logger.info("job_rescheduled", job_id=job_id, old=old_text, new=new_text)
        return self._info(new)

    def set_next_run_time(self, job_id: str, when: datetime) -> JobInfo:
        """Move only the job's next fire to `when` (aware); the schedule goes on from there.

        One occurrence earlier or later, e.g. postponed by an admin; a time already past makes
        the job due at once, or missed when it is older than the misfire grace time. A paused
        job is resumed by this.
        """
        spec = self._spec(job_id)
        if when.tzinfo is None:
            raise ValueError("when must be timezone-aware")
        self._scheduler.modify_job(job_id, next_run_time=when)
        self.changed()
        logger.info("job_next_run_moved", job_id=job_id, next_run_time=when.isoformat())
        return self._info(spec)

    def set_history_max_age(self, max_age: timedelta) -> None:
        self._history.set_max_age(max_age)

    def set_history_size(self, size: int) -> None:
        self._history.resize(size)
        self.changed()

    def set_default_timeout(self, seconds: float | None) -> None:
        if seconds is not None and seconds <= 0:
            raise ValueError("default timeout must be positive or None")
        self._default_timeout = seconds
        self.changed()

    def add_run_listener(self, listener: RunListener) -> None:
        self._history.add_listener(listener)

    # -- running ---------------------------------------------------------------------------

    def run_now(self, job_id: str) -> JobRun:
        """Start a run at once; the schedule, and a paused state, are left as they are."""
        spec = self._spec(job_id)
        if not self.running:
            raise SchedulerNotRunning("the scheduler is not running")
        call = functools.partial(spec.func, *spec.args)
        if spec.lead_seconds is not None:
            # Run now means the lead (a countdown) begins now.
            call = functools.partial(
                call, action_at=utc_now() + timedelta(seconds=spec.lead_seconds)
            )
        run, _ = self._runner.start(
            job_id,
            call,
            trigger="manual",
            scheduled_for=None,
            timeout=self.timeout_for(spec),
            quiet=spec.quiet,
        )
        # Still running, so changed later by the runner: the caller gets it as it is now.
        return run.model_copy()

    def run_call(
        self,
        job_id: str,
        call: Callable[[], Awaitable[Mapping[str, Any] | None]],
        *,
        timeout_seconds: float | None = None,
    ) -> JobRun:
        """Record `call` as a manual run of `job_id`, which needs no schedule of its own.

        For work that takes arguments a job cannot have (restore this backup): the run is
        tracked, bounded, drained at shutdown and kept in the history like any other, under
        `GET /jobs/{job_id}/runs`; one at a time per `job_id` (JobAlreadyRunning).
        """
        if not self.running:
            raise SchedulerNotRunning("the scheduler is not running")
        run, _ = self._runner.start(
            job_id, call, trigger="manual", scheduled_for=None, timeout=timeout_seconds
        )
        return run.model_copy()
