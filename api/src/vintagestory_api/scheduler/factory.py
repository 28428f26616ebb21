"""The scheduler domain as the lifespan builds it: the engine, the persisted job state, and job
control once the built-in jobs are known."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from vintagestory_api.api_settings.service import ApiSettingsService
from vintagestory_api.config import Settings

from .builtin import BuiltinJob, builtin_job_settings, cron_job_ids, register_builtin_jobs
from .control import JobControl
from .cron import host_timezone, parse_timezone
from .run_store import RunStore
from .service import SchedulerService
from .state import JOB_STATE_FILE, JobStateStore

RUNS_DB = "runs.db"


@dataclass(frozen=True)
class Scheduling:
    service: SchedulerService
    job_state: JobStateStore
    api_settings: ApiSettingsService
    run_store: RunStore

    async def close(self) -> None:
        """After the scheduler's shutdown: write what is left of the run history, close it."""
        await asyncio.to_thread(self.run_store.close)

    def register_builtin_jobs(self, jobs: Sequence[BuiltinJob]) -> JobControl:
        """Register the built-in jobs (following their settings from now on) and return the
        job control the routes use for changes that must outlive a restart."""
        register_builtin_jobs(self.service, self.api_settings, self.job_state, jobs)
        return JobControl(
            self.service,
            self.api_settings,
            self.job_state,
            builtin_job_settings(jobs),
            cron_job_ids(jobs),
        )


def build_scheduler(settings: Settings, api_settings: ApiSettingsService) -> Scheduling:
    """The engine on the configured timezone and the operator settings; not started yet."""
    job_state = JobStateStore.load(settings.state_dir / JOB_STATE_FILE)
    # Never raises for the file: a damaged database is set aside and a new one started, an
    # unusable directory means running without one; health says which.
    run_store = RunStore.open(settings.state_dir / RUNS_DB)
    current = api_settings.settings
    service = SchedulerService(
        default_timezone=parse_timezone(settings.timezone, host_timezone(), field="VS_TIMEZONE"),
        history_size=current.job_history_size,
        default_timeout_seconds=current.default_job_timeout_seconds,
        shutdown_grace_seconds=settings.shutdown_grace_seconds,
        run_store=run_store,
        history_max_age=timedelta(days=current.job_history_max_age_days),
    )
    return Scheduling(service, job_state, api_settings, run_store)
