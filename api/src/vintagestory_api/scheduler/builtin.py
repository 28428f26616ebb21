"""The built-in jobs, the settings that drive them, and keeping the scheduler in step with both."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import structlog

from vintagestory_api.api_settings.errors import ApiSettingInvalid
from vintagestory_api.api_settings.schemas import ApiSettings
from vintagestory_api.api_settings.service import ApiSettingsService

from .control import JobScheduler
from .cron import parse_crontab
from .errors import InvalidSchedule
from .specs import JobFunc
from .state import JobStateStore

logger = structlog.get_logger()


@dataclass(frozen=True)
class BuiltinJob:
    """A job the API runs on its own, declared in its domain's `jobs.py`.

    Its interval is an operator setting (0 = not registered), so `PATCH /config/api` and
    `PATCH /jobs/{id}` change the same value.
    """

    id: str  # equal to the job function's name
    func: JobFunc
    # The ApiSettings field holding the interval in seconds (0: off), or with kind "cron" the
    # crontab read in VS_TIMEZONE ("": off).
    setting: str
    name: str
    description: str
    # The services the job uses, bound at registration.
    args: tuple[Any, ...] = ()
    # Run once at startup (and when turned back on), unless it last ran within
    # STARTUP_RUN_SPACING: a crash loop must not hammer the public Vintage Story APIs.
    run_immediately: bool = False
    # When the job last did its work (e.g. its cache's last check), for that spacing.
    last_run_at: Callable[[], datetime | None] | None = None
    # A frequent routine job: successful runs are logged at debug, not info.
    quiet: bool = False
    kind: Literal["interval", "cron"] = "interval"
    # None: default_job_timeout_seconds; a long job (a world backup) names its own.
    timeout_seconds: float | None = None


# The shortest time between two startup runs of a job that runs at startup.
STARTUP_RUN_SPACING = timedelta(minutes=10)


def builtin_job_settings(table: Sequence[BuiltinJob]) -> dict[str, str]:
    """Job id -> interval (or cron) setting, for `JobControl`."""
    return {job.id: job.setting for job in table}


def cron_job_ids(table: Sequence[BuiltinJob]) -> frozenset[str]:
    return frozenset(job.id for job in table if job.kind == "cron")


class BuiltinJobManager:
    """Registers the built-in jobs and re-applies settings changes to the running scheduler."""

    def __init__(
        self,
        scheduler: JobScheduler,
        settings: ApiSettingsService,
        job_state: JobStateStore,
        jobs: Sequence[BuiltinJob],
    ) -> None:
        self._scheduler = scheduler
        self._settings = settings
        self._job_state = job_state
        self._table = tuple(jobs)
        known = set(ApiSettings.model_fields)
        for job in self._table:
            if job.setting not in known:
                raise ValueError(f"built-in job '{job.id}': unknown setting '{job.setting}'")
        cron_settings = [job.setting for job in self._table if job.kind == "cron"]
        if cron_settings:
            # A crontab the scheduler cannot read is refused by PATCH /config/api itself,
            # naming the setting, rather than failing later when the job is registered.
            settings.add_check(_cron_check(cron_settings))

    def register_all(self) -> None:
        """At startup: apply the settings, register each enabled job, paused if it was."""
        current = self._settings.settings
        self._scheduler.set_history_size(current.job_history_size)
        self._scheduler.set_default_timeout(current.default_job_timeout_seconds)
        for job in self._table:
            value: int | str = getattr(current, job.setting)
            if not value:
                logger.info("builtin_job_disabled", job_id=job.id, setting=job.setting)
                continue
            try:
                self._register(job, value)
            except InvalidSchedule as exc:
                # Only a hand-edited settings file gets here (PATCH checks the crontab).
                logger.error("builtin_job_not_registered", job_id=job.id, error=exc.message)

    def _register(self, job: BuiltinJob, value: int | str) -> None:
        paused = self._job_state.is_paused(job.id)
        if isinstance(value, str):
            self._scheduler.add_cron_job(
                job.func,
                value,
                job.id,
                name=job.name,
                description=job.description,
                args=job.args,
                timeout_seconds=job.timeout_seconds,
                paused=paused,
                quiet=job.quiet,
            )
            logger.info("builtin_job_registered", job_id=job.id, cron=value, paused=paused)
            return
        seconds = value
        # A paused job stays quiet until resumed, even one that normally runs at startup.
        first = _first_run(job) if job.run_immediately and not paused else None
        self._scheduler.add_interval_job(
            job.func,
            seconds,
            job.id,
            name=job.name,
            description=job.description,
            args=job.args,
            # None: the job follows default_job_timeout_seconds, also when that changes.
            timeout_seconds=job.timeout_seconds,
            paused=paused,
            first_run_at=first,
            quiet=job.quiet,
        )
        logger.info(
            "builtin_job_registered", job_id=job.id, interval_seconds=seconds, paused=paused
        )

    async def apply(self, old: ApiSettings, new: ApiSettings) -> None:
        """Settings listener: bring the scheduler in line with `new`."""
        if old.job_history_size != new.job_history_size:
            self._scheduler.set_history_size(new.job_history_size)
        if old.job_history_max_age_days != new.job_history_max_age_days:
            self._scheduler.set_history_max_age(timedelta(days=new.job_history_max_age_days))
        if old.default_job_timeout_seconds != new.default_job_timeout_seconds:
            self._scheduler.set_default_timeout(new.default_job_timeout_seconds)
        for job in self._table:
            try:
                self._apply_interval(job, getattr(old, job.setting), getattr(new, job.setting))
            except Exception:
                # One job failing to follow must not keep the others from following.
                logger.exception("builtin_job_apply_failed", job_id=job.id, setting=job.setting)

    def _apply_interval(self, job: BuiltinJob, old: int | str, new: int | str) -> None:
        registered = self._scheduler.has_job(job.id)
        if not new:
            if registered:
                self._scheduler.remove_job(job.id)
                logger.info("builtin_job_disabled", job_id=job.id, setting=job.setting)
        elif not registered:
            self._register(job, new)
        elif new != old and isinstance(new, str):
            self._scheduler.reschedule(job.id, cron=new)
            logger.info("builtin_job_rescheduled", job_id=job.id, old=old, new=new)
        elif new != old and isinstance(new, int):
            self._scheduler.reschedule(job.id, interval_seconds=new)
            logger.info("builtin_job_rescheduled", job_id=job.id, old=old, new=new)


def _cron_check(settings: Sequence[str]) -> Callable[[Mapping[str, Any]], None]:
    def check(changes: Mapping[str, Any]) -> None:
        for name in settings:
            value = changes.get(name)
            if isinstance(value, str) and value:
                try:
                    parse_crontab(value, field=name)
                except InvalidSchedule as exc:
                    raise ApiSettingInvalid(exc.message) from None

    return check


def _first_run(job: BuiltinJob) -> datetime:
    now = datetime.now(UTC)
    last = job.last_run_at() if job.last_run_at is not None else None
    if last is not None and now - last < STARTUP_RUN_SPACING:
        spaced = last + STARTUP_RUN_SPACING
        logger.info("builtin_job_startup_run_spaced", job_id=job.id, first_run=spaced.isoformat())
        return spaced
    return now


def register_builtin_jobs(
    scheduler: JobScheduler,
    settings: ApiSettingsService,
    job_state: JobStateStore,
    jobs: Sequence[BuiltinJob],
) -> BuiltinJobManager:
    """Register the built-in jobs now and keep them following the settings from now on."""
    manager = BuiltinJobManager(scheduler, settings, job_state, jobs)
    manager.register_all()
    settings.add_listener(manager.apply)
    return manager
