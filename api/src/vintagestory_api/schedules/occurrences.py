"""One occurrence of a schedule: skip the next, postpone it, cancel the run in progress, and
the marks a fire uses up (a part of `SchedulesService`, kept apart so the service module stays
readable)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog

from vintagestory_api.scheduler.service import SchedulerService

from .errors import NoNextOccurrence, NoRunInProgress, RunNotCancellable
from .registration import job_id
from .runs import SAME_OCCURRENCE, ScheduleRun
from .schemas import Occurrence, Postponement, Schedule, ScheduleCreate
from .steps import lead_seconds
from .store import SchedulesStore

logger = structlog.get_logger()


class Occurrences:
    _store: SchedulesStore
    _scheduler: SchedulerService
    _active: dict[str, ScheduleRun]
    _find: Callable[[str], ScheduleCreate]
    get: Callable[[str], Schedule]

    def _next_action(self, schedule: ScheduleCreate) -> datetime | None:
        jid = job_id(schedule.id)
        if not self._scheduler.has_job(jid):
            return None
        fire = self._scheduler.next_fire_time(jid)
        return fire + timedelta(seconds=lead_seconds(schedule.steps)) if fire else None

    def _require_next(self, schedule: ScheduleCreate) -> datetime:
        moment = self._next_action(schedule)
        if moment is None:
            raise NoNextOccurrence(
                f"schedule '{schedule.id}' is paused, disabled or done: it has no next occurrence"
            )
        return moment

    async def skip_next(self, schedule_id: str, role: str) -> Schedule:
        schedule = self._find(schedule_id)
        async with self._store.lock:
            moment = self._require_next(schedule)
            document = self._store.document
            skip = {**document.skip_next, schedule_id: Occurrence(action_at=moment, by=role)}
            await self._store.save(document.model_copy(update={"skip_next": skip}))
        logger.info(
            "schedule_skip_next", schedule_id=schedule_id, action_at=moment.isoformat(), role=role
        )
        return self.get(schedule_id)

    async def postpone(self, schedule_id: str, minutes: int, role: str) -> Schedule:
        schedule = self._find(schedule_id)
        async with self._store.lock:
            moment = self._require_next(schedule)
            document = self._store.document
            before = document.postponed.get(schedule_id)
            original = before.action_at if before is not None else moment
            to = moment + timedelta(minutes=minutes)
            marks = {
                **document.postponed,
                schedule_id: Postponement(action_at=original, to=to, by=role),
            }
            await self._store.save(document.model_copy(update={"postponed": marks}))
            lead = lead_seconds(schedule.steps)
            self._scheduler.set_next_run_time(job_id(schedule_id), to - timedelta(seconds=lead))
        logger.info("schedule_postponed", schedule_id=schedule_id, to=to.isoformat(), role=role)
        return self.get(schedule_id)

    async def cancel(self, schedule_id: str, role: str) -> Schedule:
        self._find(schedule_id)
        active = self._active.get(schedule_id)
        if active is None or active.control.finished.is_set():
            raise NoRunInProgress(f"schedule '{schedule_id}' has no run in progress")
        control = active.control
        if not control.cancellable:
            raise RunNotCancellable(
                f"the {control.view.action} of schedule '{schedule_id}' is under way; it cannot "
                "be cancelled"
            )
        control.cancel(role)
        # The run ends at its next wait, at once unless a step's effect is under way.
        try:
            async with asyncio.timeout(10):
                await control.finished.wait()
        except TimeoutError:
            pass
        return self.get(schedule_id)

    async def _clear_marks(self, schedule_id: str, action_at: datetime) -> None:
        """This fire used up the marks of its occurrence (and of any earlier one)."""
        async with self._store.lock:
            document = self._store.document
            skip, postponed = (
                document.skip_next.get(schedule_id),
                document.postponed.get(schedule_id),
            )
            limit = action_at + SAME_OCCURRENCE
            drop_skip = skip is not None and skip.action_at <= limit
            drop_postponed = postponed is not None and postponed.to <= limit
            if not drop_skip and not drop_postponed:
                return
            await self._store.save(
                document.model_copy(
                    update={
                        "skip_next": {
                            k: v
                            for k, v in document.skip_next.items()
                            if not (k == schedule_id and drop_skip)
                        },
                        "postponed": {
                            k: v
                            for k, v in document.postponed.items()
                            if not (k == schedule_id and drop_postponed)
                        },
                    }
                )
            )
