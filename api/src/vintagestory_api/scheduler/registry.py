"""Adding and removing jobs: the part of `SchedulerService` that turns a function and a
schedule into an APScheduler job (kept apart so the service module stays readable)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Any, Unpack

import structlog
from apscheduler.jobstores.base import JobLookupError

from .dispatch import Dispatcher
from .errors import JobAlreadyExists
from .runner import JobRunner
from .runs import RunHistory, interval_phase, utc_now
from .schemas import JobInfo
from .specs import (
    JobFunc,
    JobOptions,
    JobSpec,
    Schedule,
    job_spec,
    one_off_schedule,
    parse_schedule,
)
from .triggers import make_trigger, require_first_fire

logger = structlog.get_logger()


class JobRegistry:
    """Registration of jobs; `SchedulerService` provides the state it works on."""

    _jobs: dict[str, JobSpec]
    _scheduler: Any  # APScheduler's AsyncIOScheduler
    _dispatch: Dispatcher
    _history: RunHistory
    _runner: JobRunner
    _default_tz: tzinfo
    changed: Callable[[], None]
    _info: Callable[[JobSpec], JobInfo]
    _spec: Callable[[str], JobSpec]

    def add_interval_job(
        self,
        func: JobFunc,
        seconds: int,
        job_id: str,
        *,
        run_immediately: bool = False,
        first_run_at: datetime | None = None,
        **options: Unpack[JobOptions],
    ) -> JobInfo:
        """Every `seconds`, from one interval after now, or from `first_run_at` (now with
        `run_immediately`); later fires keep that phase."""
        schedule = parse_schedule(interval_seconds=seconds, default_tz=self._default_tz)
        first = utc_now() if run_immediately and not options.get("paused") else first_run_at
        if first is None and not options.get("paused"):
            # Keep the job's phase across restarts: next = last run + interval, or one catch-up
            # run at once when that moment passed while the API was down.
            first, due = interval_phase(self._history, job_id, seconds, utc_now())
            if due is not None:
                self._dispatch.catch_up(job_id, due)
        return self.add_job(func, job_id, schedule, first_run_at=first, **options)

    def add_cron_job(
        self,
        func: JobFunc,
        cron_expr: str,
        job_id: str,
        *,
        timezone: str | None = None,
        **options: Unpack[JobOptions],
    ) -> JobInfo:
        schedule = parse_schedule(cron=cron_expr, timezone=timezone, default_tz=self._default_tz)
        return self.add_job(func, job_id, schedule, **options)

    def add_date_job(
        self, func: JobFunc, run_at: datetime, job_id: str, **options: Unpack[JobOptions]
    ) -> JobInfo:
        """A job that fires once, at `run_at` (naive means in the default timezone)."""
        schedule = one_off_schedule(run_at, default_tz=self._default_tz)
        return self.add_job(func, job_id, schedule, **options)

    def add_job(
        self,
        func: JobFunc,
        job_id: str,
        schedule: Schedule,
        *,
        first_run_at: datetime | None = None,
        **options: Unpack[JobOptions],
    ) -> JobInfo:
        """Register a job on a checked schedule; `first_run_at` overrides its first fire time."""
        spec = job_spec(
            func,
            job_id,
            schedule,
            name=options.get("name"),
            description=options.get("description"),
            args=options.get("args", ()),
            timeout_seconds=options.get("timeout_seconds"),
            quiet=options.get("quiet", False),
            lead_seconds=options.get("lead_seconds"),
            managed_by=options.get("managed_by"),
        )
        start: dict[str, Any] = {}
        if options.get("paused"):
            start["next_run_time"] = None
        elif first_run_at is not None:
            start["next_run_time"] = first_run_at
        return self._add(spec, start)

    def _add(self, spec: JobSpec, start: dict[str, Any]) -> JobInfo:
        if spec.job_id in self._jobs:
            raise JobAlreadyExists(f"job '{spec.job_id}' already exists")
        trigger = make_trigger(spec.schedule, lead_seconds=spec.lead_seconds)
        require_first_fire(trigger, spec.schedule.tz, utc_now())
        self._jobs[spec.job_id] = spec
        self.changed()
        self._scheduler.add_job(
            self._dispatch.fire,
            trigger,
            args=(spec.job_id,),
            id=spec.job_id,
            name=spec.name,
            **start,
        )
        info = self._info(spec)
        logger.info(
            "job_added", job_id=spec.job_id, schedule=info.trigger_details, paused=info.paused
        )
        return info

    def remove_job(self, job_id: str) -> None:
        self._spec(job_id)
        del self._jobs[job_id]
        self.changed()
        self._dispatch.forget(job_id)
        # APScheduler drops a job by itself once its trigger has no future fire time.
        with contextlib.suppress(JobLookupError):
            self._scheduler.remove_job(job_id)
        # A run in flight is not touched: it finishes and stays in the history.
        in_flight = self._runner.current(job_id) is not None
        logger.info("job_removed", job_id=job_id, run_in_flight=in_flight)

    def add_schedule_job(
        self,
        func: JobFunc,
        job_id: str,
        *,
        cron: str | None = None,
        timezone: str | None = None,
        interval_seconds: int | None = None,
        at: datetime | None = None,
        first_run_at: datetime | None = None,
        **options: Unpack[JobOptions],
    ) -> JobInfo:
        """A job on a cron (with timezone), an interval or a one-off time, as admin schedules
        define them; `first_run_at` moves only its first fire (a postponed occurrence)."""
        if at is not None:
            schedule = one_off_schedule(at, default_tz=self._default_tz)
        else:
            schedule = parse_schedule(
                interval_seconds=interval_seconds,
                cron=cron,
                timezone=timezone,
                default_tz=self._default_tz,
            )
        return self.add_job(func, job_id, schedule, first_run_at=first_run_at, **options)

    def has_job(self, job_id: str) -> bool:
        return job_id in self._jobs
