"""One run of a schedule, from its fire to its last step: skips, holds, one disruptive run at
a time, player gating with deferral, the steps, cancellation; ends as the run's outcome."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import structlog

from vintagestory_api.gameserver.states import ServerState
from vintagestory_api.scheduler.outcomes import RunEnded

from .control import RunCancelled, RunControl, utc_now
from .executor import Executor
from .gating import gate
from .plans import action_label, holding
from .schemas import Hold, Occurrence, ScheduleCreate, StepResult
from .steps import is_disruptive, lead_seconds

logger = structlog.get_logger()

# An occurrence marked to skip matches a fire whose action is this close to it.
SAME_OCCURRENCE = timedelta(seconds=1)


def holder_name(schedule_id: str) -> str:
    return f"schedule '{schedule_id}'"


class ScheduleRun:
    """What a run needs from the service: its schedule, the occurrence marks, the holds."""

    def __init__(
        self,
        schedule: ScheduleCreate,
        action_at: datetime,
        *,
        executor: Executor,
        skip_next: Occurrence | None,
        holds: list[Hold],
        other_disruptive: str | None,
        clear_marks: Callable[[], Awaitable[None]],
    ) -> None:
        self.schedule = schedule
        self.control = RunControl(action_at)
        self._executor = executor
        self._skip_next = skip_next
        self._holds = holds
        self._other_disruptive = other_disruptive
        self._clear_marks = clear_marks
        self._log = logger.bind(schedule_id=schedule.id)

    def _result(self) -> dict[str, Any]:
        view = self.control.view
        return {
            "schedule_id": self.schedule.id,
            "action_at": view.action_at.isoformat(),
            "steps": [step.model_dump(mode="json", exclude_none=True) for step in view.steps],
        }

    async def run(self) -> dict[str, Any]:
        try:
            return await self._run()
        finally:
            self.control.finished.set()

    async def _run(self) -> dict[str, Any]:
        schedule, view = self.schedule, self.control.view
        skip = self._skip_next
        if skip is not None and abs(skip.action_at - view.action_at) <= SAME_OCCURRENCE:
            await self._clear_marks()
            raise RunEnded("skipped", f"skipped by {skip.by}", self._result())
        await self._clear_marks()
        disruptive = is_disruptive(schedule.steps)
        hold = holding(self._holds, utc_now(), disruptive)
        if hold is not None:
            reason = f"held until {hold.until.isoformat()}: {hold.reason} (hold {hold.id})"
            raise RunEnded("skipped", reason, self._result())
        if disruptive and self._other_disruptive is not None:
            reason = f"the disruptive run of schedule '{self._other_disruptive}' was in progress"
            raise RunEnded("skipped", reason, self._result())
        try:
            await self._gate()
            return await self._steps()
        except RunCancelled:
            by = self.control.cancelled_by or "unknown"
            label = action_label(schedule)
            await self._executor.announce(f"The scheduled {label} is cancelled")
            self._log.info("schedule_run_cancelled", by=by)
            raise RunEnded("cancelled", f"cancelled by {by}", self._result()) from None

    async def _gate(self) -> None:
        schedule, view = self.schedule, self.control.view
        if schedule.only_if is None:
            return
        started = utc_now()
        announced = False
        while True:
            players = await self._players()
            waited = (utc_now() - started).total_seconds()
            decision = gate(players, schedule.only_if, schedule.defer, waited)
            if decision.decision == "run":
                break
            if decision.decision == "skip":
                raise RunEnded("skipped", decision.reason or "skipped", self._result())
            defer = schedule.defer
            assert defer is not None  # "wait" only comes with a deferral
            view.phase = "deferred"
            view.deferred_until = started + timedelta(seconds=defer.give_up_after_seconds)
            if not announced and defer.announce:
                announced = await self._executor.announce(defer.announce)
            retry = utc_now() + timedelta(seconds=defer.retry_every_seconds)
            await self.control.pause_until(min(retry, view.deferred_until))
        if view.phase == "deferred":
            # Deferred: the run goes ahead now, so its countdown starts now.
            view.action_at = max(
                view.action_at, utc_now() + timedelta(seconds=lead_seconds(schedule.steps))
            )
            view.phase, view.deferred_until = "steps", None

    async def _players(self) -> int:
        gs = self._executor.gameserver
        if gs.state is not ServerState.RUNNING:
            return 0
        return (await gs.poll_players()).count

    async def _steps(self) -> dict[str, Any]:
        holder = holder_name(self.schedule.id)
        failed: StepResult | None = None
        for index, step in enumerate(self.schedule.steps):
            result = await self._executor.run_step(index, step, self.control, holder=holder)
            if result.outcome in ("failed", "timed_out") and step.on_failure == "abort":
                failed = result
                break
        if failed is not None:
            reason = f"step {failed.index} ({failed.action}) {failed.outcome}: {failed.detail}"
            raise RunEnded("failed", reason, self._result())
        return self._result()
