"""Admin schedules as jobs of the scheduler: each one is the job `schedule.<id>`, registered
again whenever its definition or its postponed occurrence changes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import structlog

from vintagestory_api.scheduler.errors import InvalidSchedule
from vintagestory_api.scheduler.service import JobFunc, SchedulerService

from .control import utc_now
from .plans import one_off_in_past
from .schemas import CronTrigger, IntervalTrigger, Postponement, ScheduleCreate
from .steps import lead_seconds

logger = structlog.get_logger()

JOB_PREFIX = "schedule."
# What a run may take beyond its steps' timeouts, countdown and deferral.
RUN_MARGIN_SECONDS = 60


def job_id(schedule_id: str) -> str:
    return f"{JOB_PREFIX}{schedule_id}"


def run_timeout(schedule: ScheduleCreate) -> int:
    """The run's bound as a job: its countdown, its deferral, every step's timeout."""
    defer = schedule.defer.give_up_after_seconds if schedule.defer is not None else 0
    steps = sum(step.timeout_seconds for step in schedule.steps)
    return lead_seconds(schedule.steps) + defer + steps + RUN_MARGIN_SECONDS


def register(
    scheduler: SchedulerService,
    schedule: ScheduleCreate,
    run_job: JobFunc,
    *,
    postponed: Postponement | None,
    is_paused: Callable[[str], bool],
) -> None:
    """Replace the schedule's job; a one-off whose moment has passed gets none."""
    jid = job_id(schedule.id)
    unregister(scheduler, schedule.id)
    now = utc_now()
    if one_off_in_past(schedule.trigger, now):
        return
    lead = lead_seconds(schedule.steps)
    first = postponed.to - timedelta(seconds=lead) if postponed is not None else None
    trigger: dict[str, Any]
    if isinstance(schedule.trigger, CronTrigger):
        trigger = {"cron": schedule.trigger.cron, "timezone": schedule.trigger.timezone}
    elif isinstance(schedule.trigger, IntervalTrigger):
        trigger = {"interval_seconds": schedule.trigger.interval_seconds}
    else:
        trigger = {"at": schedule.trigger.at}
    steps = " → ".join(step.action for step in schedule.steps)
    try:
        scheduler.add_schedule_job(
            run_job,
            jid,
            **trigger,
            first_run_at=first if first is not None and first > now else None,
            name=schedule.name,
            description=f"Admin schedule: {steps}",
            args=(schedule.id,),
            timeout_seconds=run_timeout(schedule),
            paused=not schedule.enabled or is_paused(jid),
            lead_seconds=lead,
            managed_by=f"/schedules/{schedule.id}",
        )
    except InvalidSchedule as exc:
        # A one-off whose countdown start has passed: nothing left to fire.
        logger.warning("schedule_not_registered", schedule_id=schedule.id, reason=exc.message)


def unregister(scheduler: SchedulerService, schedule_id: str) -> None:
    jid = job_id(schedule_id)
    if scheduler.has_job(jid):
        scheduler.remove_job(jid)
