"""SchedulesService: admin schedules as jobs of the scheduler (`schedule.<id>`), their
occurrences, holds, timeline and export; what the routes call."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import structlog

from vintagestory_api.errors import StateWriteFailed
from vintagestory_api.kit.schemas import ComponentHealth
from vintagestory_api.scheduler.schemas import ScheduleWarningInfo
from vintagestory_api.scheduler.service import SchedulerService

from .control import utc_now
from .errors import ScheduleExists, ScheduleInvalid, ScheduleNotFound
from .executor import Executor
from .holds import HoldBook
from .occurrences import Occurrences
from .plans import Planned, check_rules, one_off_in_past, planned, save_warnings
from .registration import job_id, register, unregister
from .runs import ScheduleRun
from .schemas import (
    MAX_SCHEDULES,
    CurrentRun,
    Schedule,
    ScheduleCreate,
    ScheduleStatus,
    Timeline,
)
from .steps import is_disruptive, lead_seconds
from .store import SchedulesStore
from .timeline import TimelineSource, build_timeline
from .transfer import Transfer

logger = structlog.get_logger()

NEXT_ACTIONS = 5


class SchedulesService(HoldBook, Occurrences, Transfer):
    def __init__(
        self,
        store: SchedulesStore,
        scheduler: SchedulerService,
        executor: Executor,
        *,
        is_paused: Callable[[str], bool] = lambda _: False,
    ) -> None:
        self._store = store
        self._scheduler = scheduler
        self._executor = executor
        self._is_paused = is_paused
        self._active: dict[str, ScheduleRun] = {}
        self._default_tz = scheduler.default_timezone

    def health(self) -> ComponentHealth:
        return self._store.health

    def state_file_health(self) -> dict[str, ComponentHealth]:
        return self._store.state_file_health()

    # -- registration ----------------------------------------------------------------------

    async def start(self) -> None:
        """Register every saved schedule; occurrence marks whose moment passed are dropped."""
        now = utc_now()
        document = self._store.document
        skip = {k: v for k, v in document.skip_next.items() if v.action_at > now}
        postponed = {k: v for k, v in document.postponed.items() if v.to > now}
        holds = [hold for hold in document.holds if hold.until > now]
        pruned = document.model_copy(
            update={"skip_next": skip, "postponed": postponed, "holds": holds}
        )
        # Written only when something expired: a damaged file stays reported until a change.
        if pruned != document:
            async with self._store.lock:
                # A failed write is reported in /healthz; expired marks never match a fire.
                with contextlib.suppress(StateWriteFailed):
                    await self._store.save(pruned)
        for schedule in self._store.document.schedules:
            self._register(schedule)

    def _register(self, schedule: ScheduleCreate) -> None:
        postponed = self._store.document.postponed.get(schedule.id)
        register(
            self._scheduler,
            schedule,
            self._run_job,
            postponed=postponed,
            is_paused=self._is_paused,
        )

    def _unregister(self, schedule_id: str) -> None:
        unregister(self._scheduler, schedule_id)

    # -- reading ---------------------------------------------------------------------------

    def _find(self, schedule_id: str) -> ScheduleCreate:
        for schedule in self._store.document.schedules:
            if schedule.id == schedule_id:
                return schedule
        raise ScheduleNotFound(schedule_id)

    def _planned(self, schedule: ScheduleCreate) -> Planned:
        return Planned(schedule, planned(schedule.trigger, self._default_tz))

    def list_schedules(self) -> list[Schedule]:
        return [self._view(s) for s in self._store.document.schedules]

    def get(self, schedule_id: str) -> Schedule:
        return self._view(self._find(schedule_id))

    def _view(
        self, schedule: ScheduleCreate, warnings: list[ScheduleWarningInfo] | None = None
    ) -> Schedule:
        jid = job_id(schedule.id)
        lead = lead_seconds(schedule.steps)
        registered = self._scheduler.has_job(jid)
        fires = (
            self._scheduler.fire_times_until(jid, utc_now() + timedelta(days=3660), NEXT_ACTIONS)
            if registered
            else []
        )
        actions = [f + timedelta(seconds=lead) for f in fires]
        mine = self._planned(schedule)
        if warnings is None:
            others = [self._planned(s) for s in self._store.document.schedules]
            warnings = save_warnings(mine, others, utc_now())
        active = self._active.get(schedule.id)
        document = self._store.document
        status = ScheduleStatus(
            job_id=jid,
            disruptive=is_disruptive(schedule.steps),
            lead_seconds=lead,
            paused=not registered or not fires,
            next_action_at=actions[0] if actions else None,
            next_run_at=fires[0] if fires else None,
            next_action_times=[mine.trigger.local(a) for a in actions],
            skip_next=document.skip_next.get(schedule.id),
            postponed=document.postponed.get(schedule.id),
            running=self._current(active),
            last_run=self._scheduler.last_run(jid) if registered else None,
        )
        return Schedule(
            **schedule.model_dump(),
            description=mine.trigger.describe(),
            status=status,
            warnings=warnings,
        )

    @staticmethod
    def _current(active: ScheduleRun | None) -> CurrentRun | None:
        if active is None or active.control.finished.is_set():
            return None
        return active.control.view.model_copy()

    # -- changing --------------------------------------------------------------------------

    def _check(self, schedule: ScheduleCreate, *, field: str = "body") -> list[ScheduleWarningInfo]:
        """Rules a type cannot say; returns the warnings a save answers."""
        check_rules(schedule, field)
        mine = Planned(
            schedule, planned(schedule.trigger, self._default_tz, field=f"{field}.trigger")
        )
        if one_off_in_past(schedule.trigger, utc_now()):
            raise ScheduleInvalid(f"{field}.trigger.at: must be in the future")
        others = [self._planned(s) for s in self._store.document.schedules if s.id != schedule.id]
        return save_warnings(mine, others, utc_now())

    async def create(self, schedule: ScheduleCreate) -> Schedule:
        warnings = self._check(schedule)
        async with self._store.lock:
            document = self._store.document
            if any(s.id == schedule.id for s in document.schedules):
                raise ScheduleExists(
                    f"schedule '{schedule.id}' already exists; change it with PUT or PATCH"
                )
            if len(document.schedules) >= MAX_SCHEDULES:
                raise ScheduleInvalid(f"body: at most {MAX_SCHEDULES} schedules can be kept")
            await self._store.save(
                document.model_copy(update={"schedules": [*document.schedules, schedule]})
            )
            self._register(schedule)
        logger.info("schedule_created", schedule_id=schedule.id)
        return self._view(schedule, warnings)

    async def replace(self, schedule: ScheduleCreate) -> Schedule:
        warnings = self._check(schedule)
        async with self._store.lock:
            document = self._store.document
            self._find(schedule.id)
            schedules = [schedule if s.id == schedule.id else s for s in document.schedules]
            # A new definition starts afresh: marks of the old one's occurrences go.
            skip = {k: v for k, v in document.skip_next.items() if k != schedule.id}
            postponed = {k: v for k, v in document.postponed.items() if k != schedule.id}
            await self._store.save(
                document.model_copy(
                    update={"schedules": schedules, "skip_next": skip, "postponed": postponed}
                )
            )
            self._register(schedule)
        logger.info("schedule_updated", schedule_id=schedule.id)
        return self._view(schedule, warnings)

    async def patch(self, schedule_id: str, changes: dict[str, Any]) -> Schedule:
        current = self._find(schedule_id)
        merged = {**current.model_dump(mode="json", exclude_none=True), **changes}
        try:
            schedule = ScheduleCreate.model_validate(merged)
        except ValueError as exc:
            # Each field was valid on its own; together they are not a schedule.
            raise ScheduleInvalid(f"body: {str(exc).splitlines()[0]}") from None
        return await self.replace(schedule)

    async def delete(self, schedule_id: str) -> None:
        async with self._store.lock:
            document = self._store.document
            self._find(schedule_id)
            await self._store.save(
                document.model_copy(
                    update={
                        "schedules": [s for s in document.schedules if s.id != schedule_id],
                        "skip_next": {
                            k: v for k, v in document.skip_next.items() if k != schedule_id
                        },
                        "postponed": {
                            k: v for k, v in document.postponed.items() if k != schedule_id
                        },
                    }
                )
            )
            self._unregister(schedule_id)
        logger.info("schedule_deleted", schedule_id=schedule_id)

    # -- the run ---------------------------------------------------------------------------

    async def _run_job(self, schedule_id: str, *, action_at: datetime) -> dict[str, Any]:
        schedule = self._find(schedule_id)
        other = next(
            (
                sid
                for sid, run in self._active.items()
                if sid != schedule_id
                and not run.control.finished.is_set()
                and is_disruptive(run.schedule.steps)
            ),
            None,
        )
        run = ScheduleRun(
            schedule,
            action_at,
            executor=self._executor,
            skip_next=self._store.document.skip_next.get(schedule_id),
            holds=self.holds(),
            other_disruptive=other,
            clear_marks=lambda: self._clear_marks(schedule_id, action_at),
        )
        self._active[schedule_id] = run
        try:
            return await run.run()
        finally:
            if self._active.get(schedule_id) is run:
                del self._active[schedule_id]

    # -- timeline and config as code -------------------------------------------------------

    def timeline_sources(self) -> list[TimelineSource]:
        sources: list[TimelineSource] = []
        for schedule in self._store.document.schedules:
            sources.append(
                TimelineSource(
                    schedule=schedule,
                    lead=lead_seconds(schedule.steps),
                    skip_next=self._store.document.skip_next.get(schedule.id),
                    running=self._current(self._active.get(schedule.id)),
                )
            )
        return sources

    def timeline(self, hours: int) -> Timeline:
        return build_timeline(self._scheduler, self.timeline_sources(), self.holds(), hours, job_id)
