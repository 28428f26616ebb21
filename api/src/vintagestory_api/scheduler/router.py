"""Jobs: see every job and its runs, run one now, pause, resume, reschedule, remove (admin);
and schedule previews (admin, monitor)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query, Response, status
from fastapi.openapi.models import Example

from vintagestory_api.auth.deps import AdminDep, require_admin
from vintagestory_api.auth.errors import Forbidden
from vintagestory_api.errors import StateWriteFailed, ValidationFailed, error_responses
from vintagestory_api.kit.envelope import ApiResponse, ok

from .deps import JobControlDep, JobListBodyDep, SchedulerDep
from .errors import (
    InvalidSchedule,
    JobAlreadyRunning,
    JobManagedElsewhere,
    JobNotFound,
    JobNotResumable,
    RunNotFound,
    SchedulerNotRunning,
)
from .previews import preview_schedule
from .schemas import (
    JobDeleted,
    JobDetail,
    JobInfo,
    JobList,
    JobRun,
    JobScheduleUpdate,
    RunList,
    RunOutcome,
    TriggerPreview,
    TriggerPreviewRequest,
)

router = APIRouter(
    prefix="/jobs",
    tags=["jobs"],
    dependencies=[Depends(require_admin)],
    responses=error_responses(Forbidden),
)
triggers_router = APIRouter(prefix="/triggers", tags=["triggers"])

# Bounded so that an 8,000-character id is a short 422, not a lookup and an echo of it.
MAX_JOB_ID_LENGTH = 200
JobId = Annotated[
    str,
    Path(
        description="The job's id",
        examples=["mod_cache_refresh"],
        max_length=MAX_JOB_ID_LENGTH,
    ),
]

# "Try it out" bodies in /docs: valid, and harmless to send.
SCHEDULE_EXAMPLES: dict[str, Example] = {
    "interval": {
        # Valid for the pre-filled job id (mod_cache_refresh): 6 hours instead of 4.
        "summary": "Check for mod updates every 6 hours",
        "value": {"interval_seconds": 21600},
    },
}
PREVIEW_EXAMPLES: dict[str, Example] = {
    "cron": {
        "summary": "Sundays at 04:00 in Berlin",
        "value": {"cron": "0 4 * * sun", "timezone": "Europe/Berlin", "count": 5},
    },
    "dst": {
        "summary": "A daily 02:30 run across the spring DST change",
        "value": {
            "cron": "30 2 * * *",
            "timezone": "Europe/Berlin",
            "start": "2026-03-27T12:00:00",
            "count": 4,
        },
    },
    "interval": {"summary": "Every 4 hours", "value": {"interval_seconds": 14400}},
}


@router.get(
    "",
    summary="List every job with its schedule, state and last run",
    response_model=ApiResponse[JobList],
)
async def list_jobs(scheduler: SchedulerDep, cache: JobListBodyDep) -> Response:
    # The same bytes as returning ok(JobList(...)), serialized once per change of the jobs
    # rather than once per request.
    body = cache.body(
        scheduler, scheduler.state_version, lambda: ok(JobList(jobs=scheduler.list_jobs()))
    )
    return Response(body, media_type="application/json")


@router.get(
    "/{job_id}",
    summary="One job, with its next 5 fire times",
    responses=error_responses(JobNotFound),
)
async def get_job(job_id: JobId, scheduler: SchedulerDep) -> ApiResponse[JobDetail]:
    return ok(scheduler.get_job(job_id))


@router.get(
    "/{job_id}/runs",
    summary="A job's runs, newest first, a page at a time",
    description=(
        "Runs are kept in the run database across restarts (the newest `job_history_size` per "
        "job, none older than `job_history_max_age_days`). Page back with `before` (the "
        "`next_before` of the previous page, a run id, or an ISO 8601 time) and filter with "
        "`outcome`."
    ),
    responses=error_responses(JobNotFound, RunNotFound, ValidationFailed),
)
async def list_runs(
    job_id: JobId,
    scheduler: SchedulerDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many runs")] = 50,
    before: Annotated[
        str | None,
        Query(
            max_length=64,
            description="Only runs older than this run id, or recorded before this ISO 8601 "
            "time (without an offset: UTC)",
        ),
    ] = None,
    outcome: Annotated[RunOutcome | None, Query(description="Only runs with this outcome")] = None,
) -> ApiResponse[RunList]:
    runs = await scheduler.page_runs(job_id, limit=limit, before=_cursor(before), outcome=outcome)
    next_before = runs[-1].run_id if len(runs) == limit else None
    return ok(RunList(job_id=job_id, runs=runs, next_before=next_before))


def _cursor(before: str | None) -> str | datetime | None:
    """An ISO 8601 time as an aware datetime (naive: UTC); anything else is a run id, which is
    404 RUN_NOT_FOUND when the job has no such run."""
    if before is None or not any(c in before for c in "-:"):
        return before
    try:
        moment = datetime.fromisoformat(before.replace("Z", "+00:00"))
    except ValueError:
        return before
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@router.post(
    "/{job_id}/run",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Run a job now, without changing its schedule (a paused job stays paused)",
    responses=error_responses(JobNotFound, JobAlreadyRunning, SchedulerNotRunning),
)
async def run_job(job_id: JobId, scheduler: SchedulerDep) -> ApiResponse[JobRun]:
    return ok(scheduler.run_now(job_id))


@router.post(
    "/{job_id}/pause",
    summary="Pause a job's schedule (idempotent; a run in flight goes on)",
    responses=error_responses(JobNotFound, StateWriteFailed),
)
async def pause_job(job_id: JobId, control: JobControlDep, role: AdminDep) -> ApiResponse[JobInfo]:
    # Through JobControl: the paused state is persisted and survives a restart.
    return ok(await control.pause(job_id, role=role))


@router.post(
    "/{job_id}/resume",
    summary="Resume a paused job (idempotent; 409 if it has no future fire time)",
    responses=error_responses(JobNotFound, JobNotResumable, StateWriteFailed),
)
async def resume_job(job_id: JobId, control: JobControlDep, role: AdminDep) -> ApiResponse[JobInfo]:
    return ok(await control.resume(job_id, role=role))


@router.patch(
    "/{job_id}",
    summary="Give a job a new schedule: an interval, or a cron expression and timezone",
    responses=error_responses(
        JobNotFound, InvalidSchedule, ValidationFailed, StateWriteFailed, JobManagedElsewhere
    ),
)
async def reschedule_job(
    job_id: JobId,
    update: Annotated[JobScheduleUpdate, Body(openapi_examples=SCHEDULE_EXAMPLES)],
    control: JobControlDep,
    role: AdminDep,
) -> ApiResponse[JobInfo]:
    # Only the validated schedule fields go on, never the request body itself. A built-in job's
    # interval is its operator setting, so JobControl changes that setting (one source of truth).
    info = await control.reschedule(
        job_id,
        interval_seconds=update.interval_seconds,
        cron=update.cron,
        timezone=update.timezone,
        role=role,
    )
    return ok(info)


@router.delete(
    "/{job_id}",
    summary="Remove a job (a run in flight finishes and stays in the history)",
    responses=error_responses(JobNotFound, StateWriteFailed, JobManagedElsewhere),
)
async def delete_job(
    job_id: JobId, control: JobControlDep, role: AdminDep
) -> ApiResponse[JobDeleted]:
    # Removing a built-in job sets its interval setting to 0, so it stays gone after a restart.
    await control.delete(job_id, role=role)
    return ok(JobDeleted(id=job_id))


@triggers_router.post(
    "/preview",
    summary="Preview a schedule: normalized form, description, next fire times, warnings",
    responses=error_responses(InvalidSchedule, ValidationFailed),
)
async def preview_trigger(
    request: Annotated[TriggerPreviewRequest, Body(openapi_examples=PREVIEW_EXAMPLES)],
    scheduler: SchedulerDep,
) -> ApiResponse[TriggerPreview]:
    # Off the event loop, a couple at a time: a long preview (200 years of 29 Februaries) then
    # costs its caller milliseconds, never every other request.
    async with scheduler.preview_slot:
        preview = await asyncio.to_thread(
            preview_schedule,
            interval_seconds=request.interval_seconds,
            cron=request.cron,
            timezone=request.timezone,
            count=request.count,
            start=request.start,
            default_tz=scheduler.default_timezone,
        )
    return ok(preview)
