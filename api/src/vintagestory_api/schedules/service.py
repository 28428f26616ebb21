"""SchedulesService: admin schedules as jobs of the scheduler (`schedule.<id>`), their
occurrences, holds, timeline and export; what the routes call."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import structlog

from vintagestory_api.errors import StateWriteFailed
from vintagestory_api.kit.schemas import ComponentHealth
from vintagestory_api.scheduler.errors import InvalidSchedule
from vintagestory_api.scheduler.schemas import ScheduleWarningInfo
from vintagestory_api.scheduler.service import SchedulerService

from .control import utc_now
from .errors import (
    NoNextOccurrence,
    NoRunInProgress,
    RunNotCancellable,
    ScheduleExists,
    ScheduleInvalid,
    ScheduleNotFound,
)
from .executor import Executor
from .holds import HoldBook
from .plans import Planned, check_rules, one_off_in_past, planned, save_warnings
from .runs import SAME_OCCURRENCE, ScheduleRun
from .schemas import (
    MAX_SCHEDULES,
    CronTrigger,
    CurrentRun,
    IntervalTrigger,
    Occurrence,
    Postponement,
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

JOB_PREFIX = "schedule."
NEXT_ACTIONS = 5
# What a run may take beyond its steps' timeouts, countdown and deferral.
RUN_MARGIN_SECONDS = 60


def job_id(schedule_id: str) -> str:
    return f"{JOB_PREFIX}{schedule_id}"


def run_timeout(schedule: ScheduleCreate) -> int:
    """The run's bound as a job: its countdown, its deferral, every step's timeout."""
    defer = schedule.defer.give_up_after_seconds if schedule.defer is not None else 0
    steps = sum(step.timeout_seconds for step in schedule.steps)
    return lead_seconds(schedule.steps) + defer + steps + RUN_MARGIN_SECONDS


class SchedulesService(HoldBook, Transfer):
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
        jid = job_id(schedule.id)
        if self._scheduler.has_job(jid):
            self._scheduler.remove_job(jid)
        now = utc_now()
        if one_off_in_past(schedule.trigger, now):
            return
        lead = lead_seconds(schedule.steps)
        postponed = self._store.document.postponed.get(schedule.id)
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
            self._scheduler.add_schedule_job(
                self._run_job,
                jid,
                **trigger,
                first_run_at=first if first is not None and first > now else None,
                name=schedule.name,
                description=f"Admin schedule: {steps}",
                args=(schedule.id,),
                timeout_seconds=run_timeout(schedule),
                paused=not schedule.enabled or self._is_paused(jid),
                lead_seconds=lead,
                managed_by=f"/schedules/{schedule.id}",
            )
        except InvalidSchedule as exc:
            # A one-off whose countdown start has passed: nothing left to fire.
            logger.warning("schedule_not_registered", schedule_id=schedule.id, reason=exc.message)

    def _unregister(self, schedule_id: str) -> None:
        jid = job_id(schedule_id)
        if self._scheduler.has_job(jid):
            self._scheduler.remove_job(jid)

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

    def _next_action(self, schedule: ScheduleCreate) -> datetime | None:
        jid = job_id(schedule.id)
        if not self._scheduler.has_job(jid):
            return None
        fire = self._scheduler.next_fire_time(jid)
        return fire + timedelta(seconds=lead_seconds(schedule.steps)) if fire else None

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

    # -- one occurrence --------------------------------------------------------------------

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
