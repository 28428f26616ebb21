"""SchedulerService: APScheduler 3 behind a typed API in which every run is recorded.

This is the only module that imports apscheduler. APScheduler 3.x ships no type information, so
pyproject tells mypy to treat it as `Any`; everything it returns is converted to our own models
here and its exceptions are translated to ours.

APScheduler decides *when* a job fires; the run itself is ours (services/runner.py). Every
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
import contextlib
import dataclasses
import functools
from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any

import structlog
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, EVENT_JOB_SUBMITTED
from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from vintagestory_api.errors import (
    InvalidSchedule,
    JobAlreadyExists,
    JobNotFound,
    JobNotResumable,
    SchedulerNotRunning,
)
from vintagestory_api.models.health import SchedulerHealth
from vintagestory_api.models.jobs import (
    JobDetail,
    JobInfo,
    JobRun,
    RunTrigger,
)
from vintagestory_api.services.job_specs import (
    JobFunc,
    JobSpec,
    Schedule,
    job_spec,
    local_time,
    parse_schedule,
)
from vintagestory_api.services.runner import CANCEL_WAIT_SECONDS, JobRunner
from vintagestory_api.services.runs import RunHistory, RunListener, utc_now
from vintagestory_api.services.schedules import CronSpec, timezone_name

__all__ = ["JobFunc", "SchedulerService", "fire_times"]

logger = structlog.get_logger()

NEXT_RUN_TIMES = 5


class _CronTrigger(CronTrigger):  # type: ignore[misc]  # apscheduler is untyped (see pyproject)
    """A CronTrigger that, like cron, runs a fixed-time job once when DST repeats an hour.

    APScheduler fires "30 2 * * *" twice on the night clocks go back; cron runs jobs with a fixed
    minute and hour once and only wildcard jobs (`*/15 * * * *`) in both copies of the hour.
    """

    def __init__(self, *, once_in_repeated_hour: bool, **fields: Any) -> None:
        super().__init__(**fields)
        self.once_in_repeated_hour = once_in_repeated_hour

    def get_next_fire_time(self, previous: datetime | None, now: datetime) -> datetime | None:
        fire: datetime | None = super().get_next_fire_time(previous, now)
        while self.once_in_repeated_hour and fire is not None and _second_of_repeated(fire):
            fire = super().get_next_fire_time(fire, fire)
        return fire


class _VersionedJobStore(MemoryJobStore):  # type: ignore[misc]  # apscheduler is untyped
    """A MemoryJobStore that counts its changes.

    APScheduler changes a stored job's next fire time only through its store (`update_job`,
    after every submission and every `modify_job`), so the count grows whenever a job's
    `next_run_time` or paused state can have moved, including the moves made by firing.
    """

    def __init__(self) -> None:
        super().__init__()
        self.version = 0

    def add_job(self, job: Any) -> None:
        super().add_job(job)
        self.version += 1

    def update_job(self, job: Any) -> None:
        super().update_job(job)
        self.version += 1

    def remove_job(self, job_id: str) -> None:
        super().remove_job(job_id)
        self.version += 1

    def remove_all_jobs(self) -> None:
        super().remove_all_jobs()
        self.version += 1


def _second_of_repeated(moment: datetime) -> bool:
    return moment.fold == 1 and moment.replace(fold=0).utcoffset() != moment.utcoffset()


def _cron_trigger(spec: CronSpec, tz: tzinfo) -> Any:
    once = not spec.minute.startswith("*") and not spec.hour.startswith("*")

    def make(day: str, day_of_week: str) -> Any:
        return _CronTrigger(
            minute=spec.minute,
            hour=spec.hour,
            day=day,
            month=spec.month,
            day_of_week=day_of_week,
            timezone=tz,
            once_in_repeated_hour=once,
        )

    if spec.day_or:
        # Cron fires when either day field matches; APScheduler would require both.
        return OrTrigger([make(spec.day, "*"), make("*", spec.day_of_week)])
    return make(spec.day, spec.day_of_week)


def _trigger(schedule: Schedule, start: datetime | None = None) -> Any:
    if schedule.cron is not None:
        return _cron_trigger(schedule.cron, schedule.tz)
    return IntervalTrigger(
        seconds=schedule.interval_seconds, timezone=schedule.tz, start_date=start
    )


def fire_times(schedule: Schedule, start: datetime, count: int) -> list[datetime]:
    """The first `count` fire times of `schedule` after `start`, as the scheduler would fire."""
    trigger = _trigger(schedule, start=start)
    # An interval's first fire is one interval after `start`, a cron's the first match.
    first = trigger.get_next_fire_time(start if schedule.cron is None else None, start)
    return _fire_times(trigger, first, count)


def _fire_times(trigger: Any, first: datetime | None, count: int) -> list[datetime]:
    times: list[datetime] = []
    fire = first
    while fire is not None and len(times) < count:
        times.append(fire)
        fire = trigger.get_next_fire_time(fire, fire)
    return times


def _first_fire(trigger: Any, tz: tzinfo) -> datetime:
    first: datetime | None = trigger.get_next_fire_time(None, datetime.now(tz))
    if first is None:
        raise InvalidSchedule("cron", "this schedule never fires")
    return first


class SchedulerService:
    def __init__(
        self,
        *,
        default_timezone: tzinfo,
        history_size: int = 50,
        default_timeout_seconds: float | None = 300,
        shutdown_grace_seconds: float = 30,
        misfire_grace_seconds: int = 60,
    ) -> None:
        self._default_tz = default_timezone
        self._default_timeout = default_timeout_seconds
        self._grace = shutdown_grace_seconds
        self._misfire_grace = misfire_grace_seconds
        self._history = RunHistory(history_size)
        self._runner = JobRunner(self._history)
        self._jobs: dict[str, JobSpec] = {}
        # job id -> the fire time APScheduler just submitted, for _fire to pick up.
        self._due: dict[str, datetime] = {}
        self._fire_tasks: set[asyncio.Task[Any]] = set()
        self._accepting = False
        # Changes to what list_jobs() shows that the store, history and runner do not count.
        self._version = 0
        # list_jobs() as last built, and the state_version it was built at.
        self._listed: tuple[int, list[JobInfo]] | None = None
        self._store = _VersionedJobStore()
        self._scheduler = AsyncIOScheduler(
            jobstores={"default": self._store},
            executors={"default": AsyncIOExecutor()},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": misfire_grace_seconds,
            },
            timezone=default_timezone,
        )
        self._scheduler.add_listener(self._on_submitted, EVENT_JOB_SUBMITTED)
        self._scheduler.add_listener(self._on_max_instances, EVENT_JOB_MAX_INSTANCES)
        self._scheduler.add_listener(self._on_missed, EVENT_JOB_MISSED)

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._accepting and bool(self._scheduler.running)

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

    def _changed(self) -> None:
        self._version += 1

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
        if self._fire_tasks:
            await asyncio.wait(set(self._fire_tasks), timeout=CANCEL_WAIT_SECONDS)
        self._scheduler.shutdown(wait=False)
        logger.info("scheduler_stopped")

    def health(self) -> SchedulerHealth:
        return SchedulerHealth(
            status="running" if self.running else "stopped",
            job_count=len(self._jobs),
            running_jobs=self._runner.running_count,
        )

    # -- adding and removing ---------------------------------------------------------------

    def add_interval_job(
        self,
        func: JobFunc,
        seconds: int,
        job_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        args: Sequence[Any] = (),
        timeout_seconds: float | None = None,
        paused: bool = False,
        run_immediately: bool = False,
    ) -> JobInfo:
        schedule = parse_schedule(interval_seconds=seconds, default_tz=self._default_tz)
        spec = job_spec(
            func, job_id, schedule, name=name, description=description, args=args,
            timeout_seconds=timeout_seconds,
        )  # fmt: skip
        start: dict[str, Any] = {}
        if paused:
            start["next_run_time"] = None
        elif run_immediately:
            start["next_run_time"] = utc_now()
        return self._add(spec, start)

    def add_cron_job(
        self,
        func: JobFunc,
        cron_expr: str,
        job_id: str,
        *,
        timezone: str | None = None,
        name: str | None = None,
        description: str | None = None,
        args: Sequence[Any] = (),
        timeout_seconds: float | None = None,
        paused: bool = False,
    ) -> JobInfo:
        schedule = parse_schedule(cron=cron_expr, timezone=timezone, default_tz=self._default_tz)
        spec = job_spec(
            func, job_id, schedule, name=name, description=description, args=args,
            timeout_seconds=timeout_seconds,
        )  # fmt: skip
        return self._add(spec, {"next_run_time": None} if paused else {})

    def _add(self, spec: JobSpec, start: dict[str, Any]) -> JobInfo:
        if spec.job_id in self._jobs:
            raise JobAlreadyExists(f"job '{spec.job_id}' already exists")
        trigger = _trigger(spec.schedule)
        _first_fire(trigger, spec.schedule.tz)
        self._jobs[spec.job_id] = spec
        self._changed()
        self._scheduler.add_job(
            self._fire, trigger, args=(spec.job_id,), id=spec.job_id, name=spec.name, **start
        )
        info = self._info(spec)
        logger.info(
            "job_added", job_id=spec.job_id, schedule=info.trigger_details, paused=info.paused
        )
        return info

    def remove_job(self, job_id: str) -> None:
        self._spec(job_id)
        del self._jobs[job_id]
        self._changed()
        self._due.pop(job_id, None)
        # APScheduler drops a job by itself once its trigger has no future fire time.
        with contextlib.suppress(JobLookupError):
            self._scheduler.remove_job(job_id)
        # A run in flight is not touched: it finishes and stays in the history.
        in_flight = self._runner.current(job_id) is not None
        logger.info("job_removed", job_id=job_id, run_in_flight=in_flight)

    def has_job(self, job_id: str) -> bool:
        return job_id in self._jobs

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
            times = _fire_times(job.trigger, job.next_run_time, NEXT_RUN_TIMES)
        local = [local_time(t, spec.schedule.tz) for t in times]
        return JobDetail(**info.model_dump(), next_run_times=local)

    def get_runs(self, job_id: str, limit: int = 50) -> list[JobRun]:
        """Newest first; also for a removed job whose runs are still in the history."""
        if job_id not in self._jobs and not self._history.knows(job_id):
            raise JobNotFound(job_id)
        return self._history.runs(job_id, limit)

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
        raw = self._next_run_time(spec.job_id)
        schedule = spec.schedule
        return JobInfo(
            id=spec.job_id,
            name=spec.name,
            description=spec.description,
            trigger_type="cron" if schedule.cron is not None else "interval",
            trigger_details=schedule.describe(),
            interval_seconds=schedule.interval_seconds,
            cron=schedule.cron.normalized if schedule.cron is not None else None,
            timezone=timezone_name(schedule.tz),
            next_run_time=local_time(raw, schedule.tz) if isinstance(raw, datetime) else None,
            paused=raw is None,
            running=self._runner.current(spec.job_id) is not None,
            timeout_seconds=self._timeout_for(spec),
            last_run=self._history.last(spec.job_id),
            counts=self._history.counts(spec.job_id),
        )

    # -- steering --------------------------------------------------------------------------

    def pause_job(self, job_id: str) -> JobInfo:
        spec = self._spec(job_id)
        if self._next_run_time(job_id) is not None:
            self._scheduler.pause_job(job_id)
            self._changed()
            logger.info("job_paused", job_id=job_id)
        return self._info(spec)

    def resume_job(self, job_id: str) -> JobInfo:
        spec = self._spec(job_id)
        if self._next_run_time(job_id) is None:
            # APScheduler's resume_job deletes a job without a future fire time; check first.
            job = self._scheduler.get_job(job_id)
            now = datetime.now(spec.schedule.tz)
            first = job.trigger.get_next_fire_time(None, now) if job is not None else None
            if first is None:
                raise JobNotResumable(
                    f"job '{job_id}' has no future fire time; give it a new schedule first"
                )
            self._scheduler.modify_job(job_id, next_run_time=first)
            self._changed()
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
        trigger = _trigger(schedule)
        first = _first_fire(trigger, schedule.tz)
        if self._next_run_time(job_id) is None:
            # APScheduler's reschedule_job would un-pause it.
            self._scheduler.modify_job(job_id, trigger=trigger)
        else:
            self._scheduler.modify_job(job_id, trigger=trigger, next_run_time=first)
        new = self._jobs[job_id] = dataclasses.replace(spec, schedule=schedule)
        self._changed()
        old_text, new_text = spec.schedule.describe(), schedule.describe()
        logger.info("job_rescheduled", job_id=job_id, old=old_text, new=new_text)
        return self._info(new)

    def set_history_size(self, size: int) -> None:
        self._history.resize(size)
        self._changed()

    def set_default_timeout(self, seconds: float | None) -> None:
        if seconds is not None and seconds <= 0:
            raise ValueError("default timeout must be positive or None")
        self._default_timeout = seconds
        self._changed()

    def add_run_listener(self, listener: RunListener) -> None:
        self._history.add_listener(listener)

    def _timeout_for(self, spec: JobSpec) -> float | None:
        return spec.timeout_seconds if spec.timeout_seconds is not None else self._default_timeout

    # -- running ---------------------------------------------------------------------------

    def run_now(self, job_id: str) -> JobRun:
        """Start a run at once; the schedule, and a paused state, are left as they are."""
        spec = self._spec(job_id)
        if not self.running:
            raise SchedulerNotRunning("the scheduler is not running")
        run, _ = self._start(spec, "manual", None)
        # Still running, so changed later by the runner: the caller gets it as it is now.
        return run.model_copy()

    def _start(
        self, spec: JobSpec, trigger: RunTrigger, scheduled_for: datetime | None
    ) -> tuple[JobRun, asyncio.Task[None]]:
        return self._runner.start(
            spec.job_id,
            functools.partial(spec.func, *spec.args),
            trigger=trigger,
            scheduled_for=scheduled_for,
            timeout=self._timeout_for(spec),
        )

    async def _fire(self, job_id: str) -> None:
        """What APScheduler calls when a job is due: start our run and wait for it."""
        scheduled_for = self._due.pop(job_id, None) or utc_now()
        spec = self._jobs.get(job_id)
        if spec is None:
            return
        current = self._runner.current(job_id)
        if not self._accepting or current is not None:
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
        try:
            # The run happens in this task, so APScheduler's max_instances count stays honest
            # while it lasts; APScheduler cancels its tasks only in its own shutdown, which
            # comes after ours has drained the runs.
            await self._runner.run_here(
                spec.job_id,
                functools.partial(spec.func, *spec.args),
                trigger="schedule",
                scheduled_for=scheduled_for,
                timeout=self._timeout_for(spec),
            )
        finally:
            self._fire_tasks.discard(task)

    def _on_submitted(self, event: Any) -> None:
        # Dispatched before the submitted task first runs, so _fire finds its scheduled time.
        self._due[event.job_id] = event.scheduled_run_times[-1]
        # The store has counted the new next fire time already; counted here as well so that
        # nothing depends on the order in which APScheduler updates and reports.
        self._changed()

    def _on_max_instances(self, event: Any) -> None:
        self._changed()
        reason = "the previous scheduled run was still running"
        self._runner.record_not_run(event.job_id, "skipped", event.scheduled_run_times[-1], reason)

    def _on_missed(self, event: Any) -> None:
        self._changed()
        self._due.pop(event.job_id, None)
        reason = f"could not start within the misfire grace time of {self._misfire_grace:g} s"
        self._runner.record_not_run(event.job_id, "missed", event.scheduled_run_time, reason)
