"""`GET /schedules/timeline`: everything that will happen, in time order: built-in jobs,
schedule countdowns and actions, skips, and the ends of holds."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from vintagestory_api.scheduler.service import SchedulerService

from .control import utc_now
from .plans import action_label, holding
from .runs import SAME_OCCURRENCE
from .schemas import CurrentRun, Hold, Occurrence, ScheduleCreate, Timeline, TimelineEntry
from .steps import is_disruptive

MAX_ENTRIES = 2000
PER_SOURCE = 500


@dataclass(frozen=True)
class TimelineSource:
    schedule: ScheduleCreate
    lead: int
    skip_next: Occurrence | None
    running: CurrentRun | None


def build_timeline(
    scheduler: SchedulerService,
    sources: Sequence[TimelineSource],
    holds: Sequence[Hold],
    hours: int,
    job_id: Callable[[str], str],
) -> Timeline:
    start = utc_now()
    end = start + timedelta(hours=hours)
    entries: list[TimelineEntry] = []
    for job in scheduler.list_jobs():
        if job.managed_by is not None:
            continue
        for moment in scheduler.fire_times_until(job.id, end, PER_SOURCE):
            entries.append(
                TimelineEntry(at=moment, kind="job", source=job.id, description=job.name)
            )
    for source in sources:
        entries.extend(_schedule_entries(scheduler, source, holds, end, job_id))
    for hold in holds:
        if hold.until <= end:
            entries.append(
                TimelineEntry(
                    at=hold.until,
                    kind="hold_end",
                    source=hold.id,
                    description=f"hold ends ({hold.scope}): {hold.reason}",
                )
            )
    entries.sort(key=lambda entry: entry.at)
    return Timeline(
        start=start,
        end=end,
        entries=entries[:MAX_ENTRIES],
        truncated=len(entries) > MAX_ENTRIES,
    )


def _schedule_entries(
    scheduler: SchedulerService,
    source: TimelineSource,
    holds: Sequence[Hold],
    end: datetime,
    job_id: Callable[[str], str],
) -> list[TimelineEntry]:
    schedule = source.schedule
    jid = job_id(schedule.id)
    label = action_label(schedule)
    disruptive = is_disruptive(schedule.steps)
    entries: list[TimelineEntry] = []
    if source.running is not None:
        entries.append(
            TimelineEntry(
                at=source.running.action_at,
                kind="schedule_action",
                source=schedule.id,
                description=f"{schedule.name}: {label} (its run is in progress)",
            )
        )
    if not scheduler.has_job(jid):
        return entries
    lead = timedelta(seconds=source.lead)
    for fire in scheduler.fire_times_until(jid, end, PER_SOURCE):
        action = fire + lead
        skip = source.skip_next
        if skip is not None and abs(skip.action_at - action) <= SAME_OCCURRENCE:
            entries.append(
                TimelineEntry(
                    at=action,
                    kind="skipped",
                    source=schedule.id,
                    description=f"{schedule.name}: {label} skipped by {skip.by}",
                )
            )
            continue
        hold = holding(holds, fire, disruptive)
        if hold is not None:
            entries.append(
                TimelineEntry(
                    at=action,
                    kind="skipped",
                    source=schedule.id,
                    description=f"{schedule.name}: {label} held: {hold.reason}",
                )
            )
            continue
        if source.lead:
            entries.append(
                TimelineEntry(
                    at=fire,
                    kind="countdown_start",
                    source=schedule.id,
                    description=f"{schedule.name}: countdown to the {label} starts",
                )
            )
        if action <= end:
            entries.append(
                TimelineEntry(
                    at=action,
                    kind="schedule_action",
                    source=schedule.id,
                    description=f"{schedule.name}: {label}",
                )
            )
    return entries
