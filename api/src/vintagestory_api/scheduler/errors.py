"""Errors of the job engine: unknown jobs, conflicting runs, schedules that cannot be used."""

from __future__ import annotations

from vintagestory_api.errors import (
    ApiError,
    Conflict,
    NotFound,
    ServiceUnavailable,
    ValidationFailed,
    clip,
)


class SchedulerError(ApiError):
    """Base of the scheduler domain's errors; each also derives from its generic kind."""


class JobNotFound(SchedulerError, NotFound):
    code = "JOB_NOT_FOUND"
    example = "job 'mod_cache_refresh' does not exist"

    def __init__(self, job_id: str, message: str | None = None) -> None:
        super().__init__(message or f"job '{clip(job_id)}' does not exist")
        self.job_id = job_id


class RunNotFound(SchedulerError, NotFound):
    code = "RUN_NOT_FOUND"
    example = "run '4f1c…' is not in the history of job 'mod_cache_refresh' (it may be pruned)"

    def __init__(self, job_id: str, run_id: str) -> None:
        super().__init__(
            f"run '{run_id[:64]}' is not in the history of job '{job_id[:64]}' (older runs "
            "are pruned after job_history_size runs or job_history_max_age_days)"
        )


class JobAlreadyRunning(SchedulerError, Conflict):
    code = "JOB_ALREADY_RUNNING"
    example = "job 'mod_cache_refresh' is already running"

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job '{clip(job_id)}' is already running")
        self.job_id = job_id


class JobNotResumable(SchedulerError, Conflict):
    code = "JOB_NOT_RESUMABLE"
    example = "job 'nightly' has no future fire time; give it a new schedule first"


class JobAlreadyExists(SchedulerError, Conflict):
    code = "JOB_ALREADY_EXISTS"
    example = "job 'nightly' already exists"


class InvalidSchedule(SchedulerError, ValidationFailed):
    """A cron expression, interval or timezone that cannot be scheduled; names the field."""

    code = "INVALID_SCHEDULE"
    example = "cron: expected 5 fields (minute hour day month weekday), got 4"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class SchedulerNotRunning(SchedulerError, ServiceUnavailable):
    code = "SCHEDULER_NOT_RUNNING"
    example = "the scheduler is not running"


class JobManagedElsewhere(SchedulerError, Conflict):
    """A job defined by another domain (an admin schedule): changed there, not through /jobs."""

    code = "JOB_MANAGED_ELSEWHERE"
    example = "job 'schedule.nightly' is an admin schedule; change it with PUT /schedules/nightly"
