"""The built-in jobs, the settings that drive them, and keeping the scheduler in step with both."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from vintagestory_api.models.settings import ApiSettings
from vintagestory_api.services.api_settings import ApiSettingsService
from vintagestory_api.services.job_control import JobScheduler
from vintagestory_api.services.job_specs import JobFunc
from vintagestory_api.services.job_state import JobStateStore

logger = structlog.get_logger()

# A job function and the arguments bound to it at registration (the services it uses).
JobBinding = tuple[JobFunc, tuple[Any, ...]]


@dataclass(frozen=True)
class BuiltinJob:
    id: str
    setting: str  # the ApiSettings field holding the interval in seconds; 0 = not registered
    name: str
    description: str
    run_immediately: bool = False


BUILTIN_JOBS: tuple[BuiltinJob, ...] = (
    BuiltinJob(
        id="server_versions_check",
        setting="server_versions_refresh_interval",
        name="Game version check",
        description="Fetches the stable and unstable game versions and notes new releases",
        # Version data should be fresh right after startup, not a day later.
        run_immediately=True,
    ),
    BuiltinJob(
        id="mod_cache_refresh",
        setting="mod_list_refresh_interval",
        name="Mod update check",
        description="Lists the installed mods and looks each one up in the mod database",
    ),
    BuiltinJob(
        id="metrics_collection",
        setting="metrics_collection_interval",
        name="Metrics sampling",
        description="Samples API, game server, host and disk usage into the metrics history",
        # An admin opening /metrics/current right after startup should see data, not null for
        # a whole interval.
        run_immediately=True,
    ),
)


def builtin_job_settings(table: tuple[BuiltinJob, ...] = BUILTIN_JOBS) -> dict[str, str]:
    """Job id -> interval setting, for `JobControl`."""
    return {job.id: job.setting for job in table}


class BuiltinJobManager:
    """Registers the built-in jobs and re-applies settings changes to the running scheduler."""

    def __init__(
        self,
        scheduler: JobScheduler,
        settings: ApiSettingsService,
        job_state: JobStateStore,
        jobs: Mapping[str, JobBinding],
        table: tuple[BuiltinJob, ...] = BUILTIN_JOBS,
    ) -> None:
        self._scheduler = scheduler
        self._settings = settings
        self._job_state = job_state
        self._jobs = dict(jobs)
        # Only jobs whose function was supplied are managed; the rest are absent from /jobs.
        self._table = tuple(job for job in table if job.id in self._jobs)
        for job in table:
            if job.id not in self._jobs:
                logger.info("builtin_job_unavailable", job_id=job.id)

    def register_all(self) -> None:
        """At startup: apply the settings, register each enabled job, paused if it was."""
        current = self._settings.settings
        self._scheduler.set_history_size(current.job_history_size)
        self._scheduler.set_default_timeout(current.default_job_timeout_seconds)
        for job in self._table:
            seconds: int = getattr(current, job.setting)
            if seconds == 0:
                logger.info("builtin_job_disabled", job_id=job.id, setting=job.setting)
                continue
            self._register(job, seconds)

    def _register(self, job: BuiltinJob, seconds: int) -> None:
        func, args = self._jobs[job.id]
        paused = self._job_state.is_paused(job.id)
        self._scheduler.add_interval_job(
            func,
            seconds,
            job.id,
            name=job.name,
            description=job.description,
            args=args,
            # None: the job follows default_job_timeout_seconds, also when that changes.
            timeout_seconds=None,
            paused=paused,
            # A paused job stays quiet until resumed, even one that normally runs at startup.
            run_immediately=job.run_immediately and not paused,
        )
        logger.info(
            "builtin_job_registered", job_id=job.id, interval_seconds=seconds, paused=paused
        )

    async def apply(self, old: ApiSettings, new: ApiSettings) -> None:
        """Settings listener: bring the scheduler in line with `new`."""
        if old.job_history_size != new.job_history_size:
            self._scheduler.set_history_size(new.job_history_size)
        if old.default_job_timeout_seconds != new.default_job_timeout_seconds:
            self._scheduler.set_default_timeout(new.default_job_timeout_seconds)
        for job in self._table:
            try:
                self._apply_interval(job, getattr(old, job.setting), getattr(new, job.setting))
            except Exception:
                # One job failing to follow must not keep the others from following.
                logger.exception("builtin_job_apply_failed", job_id=job.id, setting=job.setting)

    def _apply_interval(self, job: BuiltinJob, old: int, new: int) -> None:
        registered = self._scheduler.has_job(job.id)
        if new == 0:
            if registered:
                self._scheduler.remove_job(job.id)
                logger.info("builtin_job_disabled", job_id=job.id, setting=job.setting)
        elif not registered:
            self._register(job, new)
        elif new != old:
            self._scheduler.reschedule(job.id, interval_seconds=new)
            logger.info("builtin_job_rescheduled", job_id=job.id, old=old, new=new)


def register_default_jobs(
    scheduler: JobScheduler,
    settings: ApiSettingsService,
    job_state: JobStateStore,
    jobs: Mapping[str, JobBinding],
) -> BuiltinJobManager:
    """Register the built-in jobs now and keep them following the settings from now on."""
    manager = BuiltinJobManager(scheduler, settings, job_state, jobs)
    manager.register_all()
    settings.add_listener(manager.apply)
    return manager
