"""Running a schedule's steps against the game server, backups and installs: each step ends
when its effect is done (server stopped, backup verified, server ready), not when it was sent."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

import structlog

from vintagestory_api.errors import ApiError
from vintagestory_api.gameserver.errors import ServerNotRunning
from vintagestory_api.gameserver.service import GameServerService
from vintagestory_api.gameserver.states import ServerState

from .control import RunCancelled, RunControl, utc_now
from .countdown import countdown_plan, render, sanitise
from .ports import BackupTaker, Installer, ModUpdater
from .schemas import StepOutcome, StepResult
from .steps import (
    AnnounceStep,
    BackupStep,
    CommandStep,
    InstallStep,
    RestartStep,
    StartStep,
    Step,
    StopStep,
    UpdateModsStep,
    WaitStep,
    WaitUntilEmptyStep,
    warn_before,
)

logger = structlog.get_logger()

MAX_DETAIL = 160
_DOWN = frozenset({ServerState.STOPPED, ServerState.CRASHED, ServerState.NOT_INSTALLED})


class StepFailed(Exception):
    """A step whose effect did not happen; the message says why."""


class StepSkipped(Exception):
    """A step that does not apply (e.g. an announcement while the server is stopped)."""


def clip_detail(text: str) -> str:
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 1] + "…"


def describe(result: object) -> str | None:
    if result is None:
        return None
    if isinstance(result, Mapping):
        return ", ".join(f"{k}={v}" for k, v in list(result.items())[:6])
    return str(result)


@dataclass
class Executor:
    gameserver: GameServerService
    backups: BackupTaker | None = None
    installer: Installer | None = None
    mods: ModUpdater | None = None

    async def run_step(
        self, index: int, step: Step, control: RunControl, *, holder: str
    ) -> StepResult:
        """One step, bounded by its timeout (after its countdown), as a result; raises only
        `RunCancelled`."""
        control.check()
        view = control.view
        view.step, view.action = index, step.action
        if warn_before(step) or isinstance(step, StopStep | RestartStep | InstallStep):
            await self._countdown(step, control)
            view.phase = "action"
        else:
            view.phase = "steps"
        started = utc_now()
        outcome: StepOutcome = "succeeded"
        detail: str | None
        try:
            async with asyncio.timeout(step.timeout_seconds):
                detail = await self._act(step, control, holder)
        except TimeoutError:
            outcome = "timed_out"
            detail = f"timed out after {step.timeout_seconds} s; {self._server_now()}"
        except StepSkipped as exc:
            outcome, detail = "skipped", str(exc)
        except RunCancelled:
            raise
        except (StepFailed, ApiError) as exc:
            outcome = "failed"
            detail = exc.message if isinstance(exc, ApiError) else str(exc)
        except Exception as exc:
            # A broken backup or install service: the step fails, the run says why.
            logger.exception("schedule_step_crashed", action=step.action)
            outcome, detail = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            view.phase = "steps"
        result = StepResult(
            index=index,
            action=step.action,
            outcome=outcome,
            started_at=started,
            finished_at=utc_now(),
            detail=clip_detail(detail) if detail else None,
        )
        control.record(result)
        return result

    def _server_now(self) -> str:
        state = self.gameserver.state
        if state is ServerState.STOPPING:
            return "the game server is stopping (its stop goes on: /stop, SIGTERM, SIGKILL)"
        return f"the game server is {state}"

    async def _countdown(self, step: Step, control: RunControl) -> None:
        """The warnings before the step's action, then the action at the scheduled moment."""
        view = control.view
        view.phase = "countdown"
        message = getattr(step, "message", "")
        for warning in countdown_plan(view.action_at, warn_before(step), utc_now()):
            view.next_warning_at = warning.at
            view.next_warning = render(message, warning.remaining_seconds)
            await control.pause_until(warning.at)
            await self.announce(view.next_warning)
        view.next_warning_at = view.next_warning = None
        await control.pause_until(view.action_at)

    async def announce(self, text: str) -> bool:
        """Broadcast `text` if the server is running; False when it is not."""
        if self.gameserver.state is not ServerState.RUNNING:
            return False
        try:
            await self.gameserver.send_command(f"/announce {sanitise(text)}")
        except ServerNotRunning:
            return False
        return True

    async def _act(self, step: Step, control: RunControl, holder: str) -> str | None:
        gs = self.gameserver
        if isinstance(step, AnnounceStep | CommandStep):
            running = gs.state is ServerState.RUNNING
            if not running and step.skip_if_server_stopped:
                raise StepSkipped(f"the game server is {gs.state}")
            line = (
                f"/announce {sanitise(step.message)}"
                if isinstance(step, AnnounceStep)
                else step.command
            )
            reply = await gs.send_command(line)
            if not reply.echoed:
                raise StepFailed(f"the game server did not echo {line!r}")
            replies = [entry.text for entry in reply.lines if entry.text.strip()][1:2]
            return replies[0] if replies else None
        if isinstance(step, BackupStep):
            if self.backups is None:
                raise StepFailed("no backup service is configured in this API")
            return describe(await self.backups.take(holder)) or "backup verified"
        if isinstance(step, UpdateModsStep):
            if self.mods is None:
                raise StepFailed("no mod manager is configured in this API")
            return describe(await self.mods.update_all()) or "mods updated"
        if isinstance(step, InstallStep):
            if self.installer is None:
                raise StepFailed("no installer is configured in this API")
            return describe(await self.installer.install(step.version)) or "installed"
        if isinstance(step, WaitStep):
            await control.pause_until(utc_now() + timedelta(seconds=step.seconds))
            return None
        if isinstance(step, WaitUntilEmptyStep):
            return await self._wait_until_empty(step, control)
        return await self._lifecycle(step, holder)

    async def _wait_until_empty(self, step: WaitUntilEmptyStep, control: RunControl) -> str:
        while True:
            if self.gameserver.state is not ServerState.RUNNING:
                return f"the game server is {self.gameserver.state}"
            players = await self.gameserver.poll_players()
            if players.count == 0:
                return "nobody online"
            await control.pause_until(utc_now() + timedelta(seconds=step.poll_every_seconds))

    async def _lifecycle(self, step: Step, holder: str) -> str:
        gs = self.gameserver
        role = holder
        async with gs.lifecycle(holder):
            if isinstance(step, StopStep):
                if not await gs.stop(role, holder=holder):
                    return "it was not running"
                state = await gs.wait_for_state(lambda s: s in _DOWN)
                if state is not ServerState.STOPPED:
                    raise StepFailed(f"the game server is {state} after the stop")
                return "stopped"
            if isinstance(step, StartStep):
                if not await gs.start(role, holder=holder) and gs.state is ServerState.RUNNING:
                    return "it was already running"
                return await self._until_ready(None)
            old_pid = gs.pid
            await gs.restart(role, holder=holder)
            return await self._until_ready(old_pid)

    async def _until_ready(self, old_pid: int | None) -> str:
        gs = self.gameserver

        def done(state: ServerState) -> bool:
            ready = state is ServerState.RUNNING and gs.pid != old_pid
            return ready or state in (ServerState.CRASHED, ServerState.NOT_INSTALLED)

        state = await gs.wait_for_state(done)
        if state is not ServerState.RUNNING:
            raise StepFailed(f"the game server is {state} instead of running")
        return f"ready (pid {gs.pid})"
