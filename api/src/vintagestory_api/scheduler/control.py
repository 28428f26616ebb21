"""Admin changes to jobs that must survive a restart, routed to the one place that keeps them.

The scheduler keeps jobs in memory only. A built-in job's interval lives in the API settings (so
`PATCH /jobs/{id}` and `PATCH /config/api` change the same value), and every job's pause flag
lives in the job state file; both are re-applied when the jobs are registered at startup.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog

from vintagestory_api.api_settings.errors import ApiSettingInvalid
from vintagestory_api.api_settings.service import ApiSettingsService
from vintagestory_api.auth.keys import Role
from vintagestory_api.errors import StateWriteFailed

from .errors import InvalidSchedule, JobManagedElsewhere, JobNotFound
from .schemas import JobInfo
from .specs import JobFunc
from .state import JobStateStore

logger = structlog.get_logger()


class JobScheduler(Protocol):
    """The part of `SchedulerService` that job control and the built-in jobs use.

    A protocol so that both can be tested with a small fake as well as the real scheduler.
    """

    def add_interval_job(
        self,
        func: JobFunc,
        seconds: int,
        job_id: str,
        *,
        name: str,
        description: str | None,
        args: tuple[Any, ...],
        timeout_seconds: float | None,
        paused: bool,
        first_run_at: datetime | None,
        quiet: bool,
    ) -> JobInfo: ...

    def add_cron_job(
        self,
        func: JobFunc,
        cron_expr: str,
        job_id: str,
        *,
        name: str,
        description: str | None,
        args: tuple[Any, ...],
        timeout_seconds: float | None,
        paused: bool,
        quiet: bool,
    ) -> JobInfo: ...

    def remove_job(self, job_id: str) -> None: ...

    def has_job(self, job_id: str) -> bool: ...

    def get_job(self, job_id: str) -> JobInfo: ...

    def reschedule(
        self,
        job_id: str,
        *,
        interval_seconds: int | None = None,
        cron: str | None = None,
        timezone: str | None = None,
    ) -> JobInfo: ...

    def pause_job(self, job_id: str) -> JobInfo: ...

    def resume_job(self, job_id: str) -> JobInfo: ...

    def set_history_size(self, size: int) -> None: ...

    def set_history_max_age(self, max_age: timedelta) -> None: ...

    def set_default_timeout(self, seconds: float | None) -> None: ...


def _schedule_text(info: JobInfo) -> str:
    if info.interval_seconds is not None:
        return f"every {info.interval_seconds} s"
    return f"cron {info.cron} ({info.timezone})"


class JobControl:
    """What the jobs router calls for changes an admin expects to outlive a restart."""

    def __init__(
        self,
        scheduler: JobScheduler,
        settings: ApiSettingsService,
        job_state: JobStateStore,
        builtin_settings: Mapping[str, str],
        cron_jobs: frozenset[str] = frozenset(),
    ) -> None:
        self._scheduler = scheduler
        self._settings = settings
        self._job_state = job_state
        # job id -> the ApiSettings field holding its interval.
        self._builtin_settings = dict(builtin_settings)
        # Built-in jobs whose setting is a crontab rather than an interval.
        self._cron_jobs = cron_jobs
        # Keeps the pause flag on disk and in the scheduler changing together.
        self._lock = asyncio.Lock()

    def builtin_setting(self, job_id: str) -> str | None:
        return self._builtin_settings.get(job_id)

    def _existing(self, job_id: str) -> JobInfo:
        if not self._scheduler.has_job(job_id):
            setting = self.builtin_setting(job_id)
            if setting is not None and job_id in self._cron_jobs:
                raise JobNotFound(
                    job_id,
                    f"built-in job '{job_id}' is turned off ({setting} is empty); turn it on "
                    f'with PATCH /config/api {{"{setting}": "<crontab>"}}',
                )
            if setting is not None:
                # A built-in job that was deleted (its setting is 0): say how to bring it back.
                raise JobNotFound(
                    job_id,
                    f"built-in job '{job_id}' is turned off ({setting} is 0); turn it back on "
                    f'with PATCH /config/api {{"{setting}": <seconds>}}',
                )
            raise JobNotFound(job_id)
        return self._scheduler.get_job(job_id)

    def _not_managed_elsewhere(self, info: JobInfo, change: str) -> None:
        if info.managed_by is not None:
            raise JobManagedElsewhere(
                f"job '{info.id}' is defined at {info.managed_by}; {change} it there"
            )

    async def reschedule(
        self,
        job_id: str,
        *,
        interval_seconds: int | None = None,
        cron: str | None = None,
        timezone: str | None = None,
        role: Role,
    ) -> JobInfo:
        before = self._existing(job_id)
        self._not_managed_elsewhere(before, "reschedule")
        setting = self.builtin_setting(job_id)
        if setting is None:
            info = self._scheduler.reschedule(
                job_id, interval_seconds=interval_seconds, cron=cron, timezone=timezone
            )
            logger.info(
                "job_rescheduled",
                job_id=job_id,
                role=str(role),
                old=_schedule_text(before),
                new=_schedule_text(info),
            )
            return info
        if job_id in self._cron_jobs:
            return await self._reschedule_cron(job_id, setting, cron, timezone, role)
        if cron is not None or interval_seconds is None:
            raise InvalidSchedule(
                "cron",
                f"built-in job '{job_id}' is interval-scheduled; set interval_seconds "
                f"(or the setting {setting})",
            )
        if interval_seconds <= 0:
            raise InvalidSchedule(
                "interval_seconds",
                f"must be at least 1 second; to turn '{job_id}' off, DELETE /jobs/{job_id} (the "
                f"same as setting {setting} to 0 in PATCH /config/api)",
            )
        try:
            await self._settings.patch({setting: interval_seconds}, role=role)
        except ApiSettingInvalid as exc:
            reason = exc.message.removeprefix(f"{setting}: ")
            raise InvalidSchedule(
                "interval_seconds", f"{reason} (built-in job, setting {setting})"
            ) from exc
        return self._scheduler.get_job(job_id)

    async def _reschedule_cron(
        self, job_id: str, setting: str, cron: str | None, timezone: str | None, role: Role
    ) -> JobInfo:
        if cron is None:
            raise InvalidSchedule(
                "interval_seconds",
                f"built-in job '{job_id}' is cron-scheduled; set cron (or the setting {setting})",
            )
        if timezone is not None:
            raise InvalidSchedule(
                "timezone", f"built-in job '{job_id}' follows VS_TIMEZONE; leave timezone out"
            )
        try:
            await self._settings.patch({setting: cron}, role=role)
        except ApiSettingInvalid as exc:
            reason = exc.message.removeprefix(f"{setting}: ")
            raise InvalidSchedule("cron", f"{reason} (built-in job, setting {setting})") from exc
        return self._scheduler.get_job(job_id)

    async def delete(self, job_id: str, *, role: Role) -> None:
        before = self._existing(job_id)
        self._not_managed_elsewhere(before, "delete")
        setting = self.builtin_setting(job_id)
        if setting is not None:
            # Disabling a built-in job is its setting going to 0 (or ""), so it stays disabled
            # after a restart; the settings listener removes it from the scheduler.
            await self._settings.patch({setting: "" if job_id in self._cron_jobs else 0}, role=role)
            return
        self._scheduler.remove_job(job_id)
        logger.info("job_deleted", job_id=job_id, role=str(role), old=_schedule_text(before))

    async def pause(self, job_id: str, *, role: Role) -> JobInfo:
        return await self._set_paused(job_id, True, role)

    async def resume(self, job_id: str, *, role: Role) -> JobInfo:
        return await self._set_paused(job_id, False, role)

    async def _set_paused(self, job_id: str, paused: bool, role: Role) -> JobInfo:
        async with self._lock:
            before = self._existing(job_id)
            apply, undo = (
                (self._scheduler.pause_job, self._scheduler.resume_job)
                if paused
                else (self._scheduler.resume_job, self._scheduler.pause_job)
            )
            # The scheduler first: a resume it refuses (no future fire time) changes nothing.
            info = apply(job_id)
            try:
                await self._job_state.set_paused(job_id, paused)
            except StateWriteFailed:
                if before.paused != paused:
                    undo(job_id)
                raise
            if before.paused != paused:
                logger.info(
                    "job_paused" if paused else "job_resumed",
                    job_id=job_id,
                    role=str(role),
                    old={"paused": before.paused},
                    new={"paused": paused},
                )
            return info
