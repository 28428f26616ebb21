"""The game server's state machine: start, ready, stop by escalation, crashes and restarts.

- RUNNING only on the ready line (or, for a non-English server, the first Event line after
  `Entering runphase RunGame`); never on spawn or an open port. A start not ready in time is
  stopped.
- Stop: `/stop` when running, SIGTERM while starting; then SIGTERM again, then SIGKILL, each
  after its operator timeout. The step that ended it is recorded; stdout is read to EOF first.
- Any exit nobody asked for is a crash, exit 0 included; what follows one is `restarts.py`.
- Who may start or stop it now (an action in progress, another domain's hold) is `guard.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import re
import time
from collections import deque
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import structlog

from .console import CommandWriter, ConsoleBuffer
from .errors import ServerNotInstalled
from .exits import GameRun, Timings, describe_exit
from .guard import LifecycleGuard
from .launch import LaunchConfig, check_runtime
from .players import PlayerTracker, poll_players
from .process import Launcher
from .restarts import AutoRestart
from .schemas import EventKind, LastExit, LifecycleEvent
from .states import PROCESS_STATES, UP_STATES, ServerState, check_transition
from .stopping import escalate_stop, watch_output

logger = structlog.get_logger()

RESTART_REASONS = ("crash", "requested")
READY = re.compile(r"^Dedicated Server now running on Port (\d+)")
RUN_GAME = "Entering runphase RunGame"
STOP_REASON = "Stop reason: "
EVENTS_KEPT = 500
# A localized server has no English ready line; past RunGame it is ready within moments.
RUN_GAME_FALLBACK = 5.0
LAST_LINES = 20
RESTART_REASONS_KEPT = 50


class Supervisor:
    def __init__(
        self,
        config: LaunchConfig,
        launcher: Launcher,
        timings: Callable[[], Timings],
        *,
        players_poll_seconds: float = 60.0,
    ) -> None:
        self.config = config
        self._launcher = launcher
        self._timings = timings
        self._poll_seconds = players_poll_seconds
        self.console = ConsoleBuffer()
        self.console.add_handler(self._on_line)
        self.players = PlayerTracker()
        self.events: deque[LifecycleEvent] = deque(maxlen=EVENTS_KEPT)
        self.last_exit: LastExit | None = None
        self.version: str | None = config.installed_version()
        # Why the running process should be restarted (a mod changed under it); a new process
        # reads the current files, so every start clears them, and so does every exit.
        self.restart_reasons: list[str] = []
        # Every reason from the start, so a counter's first increase is seen (a series that
        # appears at 1 has no increase to show).
        self.restarts: dict[str, int] = dict.fromkeys(RESTART_REASONS, 0)
        self.crash_count = 0
        # Seconds from spawn to ready of the last start that got there; kept after it stops.
        self.last_ready_seconds: float | None = None
        # The admin's last word: a start (or restart, or auto-start) asked for it to run, a stop
        # not. Crashes, timeouts and give-ups leave it as it was, so "should run but is down"
        # stays visible until someone decides otherwise.
        self.should_run = False
        self._state = ServerState.STOPPED if config.installed else ServerState.NOT_INSTALLED
        self._run: GameRun | None = None
        # Who may start or stop it now; the facade takes and releases holds through it.
        self.guard = LifecycleGuard()
        self._restarts = AutoRestart(timings, self.guard)
        self._background: set[asyncio.Task[None]] = set()
        self._state_listeners: list[Callable[[ServerState], None]] = []

    # --- state -----------------------------------------------------------------------------

    @property
    def state(self) -> ServerState:
        return self._state

    @property
    def crash_loop(self) -> bool:
        """Crashed repeatedly: automatic restarts are off until an admin starts it."""
        return self._restarts.crash_loop

    @property
    def restart_at(self) -> datetime | None:
        """When the automatic restart after a crash is due, if one is."""
        return self._restarts.restart_at

    @property
    def run(self) -> GameRun | None:
        return self._run if self._state in PROCESS_STATES else None

    def add_state_listener(self, listener: Callable[[ServerState], None]) -> None:
        self._state_listeners.append(listener)

    def remove_state_listener(self, listener: Callable[[ServerState], None]) -> None:
        if listener in self._state_listeners:
            self._state_listeners.remove(listener)

    def change_state(
        self,
        new: ServerState,
        kind: EventKind,
        *,
        role: str | None = None,
        detail: str | None = None,
    ) -> None:
        """The one place the state changes: checked, recorded as an event and logged."""
        old = self._state
        check_transition(old, new)
        self._state = new
        self.record(kind, role=role, detail=detail)
        for listener in self._state_listeners:
            listener(new)

    def record(
        self, kind: EventKind, *, role: str | None = None, detail: str | None = None
    ) -> None:
        self.events.append(
            LifecycleEvent(
                at=datetime.now(UTC), kind=kind, state=self._state, role=role, detail=detail
            )
        )
        logger.info(f"game_server_{kind}", state=str(self._state), role=role, detail=detail)

    def add_restart_reason(self, reason: str) -> bool:
        """Note why the running process is out of date; False when no process would care."""
        # A starting or running process has loaded (or is loading) its mods; a stopping one
        # will not run again.
        if self._state not in UP_STATES:
            return False
        if reason not in self.restart_reasons:
            if len(self.restart_reasons) >= RESTART_REASONS_KEPT:
                del self.restart_reasons[0]
            self.restart_reasons.append(reason)
        return True

    # --- requests --------------------------------------------------------------------------

    async def start(self, role: str, *, holder: str | None = None) -> bool:
        """Spawn the server; False when it is already up. Ready comes later, from its log."""
        self.guard.check(holder)
        self.should_run = True
        if self._state in UP_STATES:
            return False
        self.guard.action = "start"
        try:
            self.record("start_requested", role=role)
            self._restarts.reset()
            await self._launch(role)
        finally:
            self.guard.action = None
        return True

    async def stop(self, role: str, *, holder: str | None = None) -> bool:
        """Begin a graceful stop; False when there is no process (a pending restart is off)."""
        self.guard.check(holder)
        self.should_run = False
        self._restarts.cancel()
        run = self.run
        if run is None:
            if self._state is ServerState.CRASHED:
                self._restarts.crash_loop = False
                self.change_state(ServerState.STOPPED, "stopped", role=role)
            return False
        self.guard.action = "stop"
        self.begin_stop(run, role)
        self._spawn_task(self._stop_then(run, role, restart=False))
        return True

    async def restart(self, role: str, *, holder: str | None = None) -> bool:
        self.guard.check(holder)
        self.should_run = True
        self._restarts.cancel()
        self.record("restart_requested", role=role)
        self.restarts["requested"] = self.restarts.get("requested", 0) + 1
        run = self.run
        if run is None:
            self.guard.action = "restart"
            try:
                self._restarts.crash_loop = False
                await self._launch(role)
            finally:
                self.guard.action = None
            return True
        self.guard.action = "restart"
        self.begin_stop(run, role)
        self._spawn_task(self._stop_then(run, role, restart=True))
        return True

    async def launch_held(self, holder: str, role: str) -> GameRun:
        """For `holder` of the lifecycle (see `guard`): spawn the server, as `start` does."""
        self.guard.check_holder(holder)
        self._restarts.cancel()
        self.record("start_requested", role=role)
        await self._launch(role)
        assert self._run is not None
        return self._run

    async def close(self) -> None:
        """API shutdown: stop the server the graceful way and wait for it, then clean up."""
        self._restarts.cancel()
        run = self.run
        if run is not None:
            if self.guard.action is None and not run.stop_requested:
                self.guard.action = "stop"
                self.begin_stop(run, "api_shutdown")
                self._spawn_task(self._stop_then(run, "api_shutdown", restart=False))
            # Whoever began the stop, the process is gone when `exited` is set.
            await run.exited.wait()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self.console.close_subscribers()

    # --- launching -------------------------------------------------------------------------

    async def _launch(self, role: str) -> None:
        if not self.config.installed:
            if self._state is not ServerState.NOT_INSTALLED:
                self.change_state(ServerState.NOT_INSTALLED, "spawn_failed", detail="no files")
            raise ServerNotInstalled(self.config.not_installed_reason())
        if self._state is ServerState.NOT_INSTALLED:
            self.change_state(ServerState.STOPPED, "stopped", detail="server files found")
        try:
            await check_runtime(self.config, self._launcher)
        except Exception as exc:
            self.record("runtime_missing", role=role, detail=str(exc))
            raise
        self.config.data_path.mkdir(parents=True, exist_ok=True)
        argv = self.config.argv()
        try:
            process = await self._launcher.spawn(argv, cwd=self.config.cwd)
        except OSError as exc:
            self.record("spawn_failed", role=role, detail=f"{argv[0]}: {exc.strerror or exc}")
            raise ServerNotInstalled(
                f"cannot run the game server ({argv[0]}): {exc.strerror or exc}"
            ) from None
        run = GameRun(
            process=process,
            writer=CommandWriter(process, self.console),
            started_at=datetime.now(UTC),
            started_mono=time.monotonic(),
        )
        self._run = run
        self.players.clear()
        self._restarts.restart_at = None
        self.restart_reasons.clear()
        self.change_state(ServerState.STARTING, "spawned", role=role, detail=f"pid {process.pid}")
        self._spawn_task(self._watch(run), run)
        self._spawn_task(self._start_deadline(run), run)

    def _spawn_task(
        self, coro: Coroutine[Any, Any, None], run: GameRun | None = None
    ) -> asyncio.Task[None]:
        # A fresh context: the task outlives the request that began it, and must not log
        # with that request's id.
        task = asyncio.get_running_loop().create_task(coro, context=contextvars.Context())
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        if run is not None:
            run.tasks.add(task)
            task.add_done_callback(run.tasks.discard)
        return task

    async def _start_deadline(self, run: GameRun) -> None:
        timeout = self._timings().start_timeout
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await run.exited.wait()
        # A holder that started it (a version switch) waits for readiness itself.
        if run.exited.is_set() or run.ready_at is not None or self.guard.busy:
            return
        self.guard.action = "stop"
        self.record("start_timeout", detail=f"not ready after {timeout:g} s")
        self.begin_stop(run, "start_timeout")
        await self._stop_then(run, "start_timeout", restart=False)

    # --- the console -----------------------------------------------------------------------

    def _on_line(self, entry_type: str, text: str) -> None:
        run = self._run
        if run is None:
            return
        run.writer.on_line(entry_type, text)
        self.players.on_line(entry_type, text)
        if entry_type == "stderr":
            run.stderr.append(text)
            return
        if STOP_REASON in text:
            run.stop_reason = text.split(STOP_REASON, 1)[1].strip()
        elif text.startswith("Game Version: v"):
            self.version = text.removeprefix("Game Version: v").split(" ", 1)[0]
        if run.ready_at is not None:
            return
        if entry_type == "Event" and (READY.match(text) or run.run_game_seen):
            self._ready(run, text)
        elif text == RUN_GAME:
            run.run_game_seen = True
            self._spawn_task(self._run_game_fallback(run), run)

    async def _run_game_fallback(self, run: GameRun) -> None:
        await asyncio.sleep(RUN_GAME_FALLBACK)
        if run.ready_at is None and not run.exited.is_set():
            self._ready(run, RUN_GAME)

    def _ready(self, run: GameRun, line: str) -> None:
        if self._state is not ServerState.STARTING or run is not self._run:
            return
        run.ready_at = datetime.now(UTC)
        run.ready_seconds = self.last_ready_seconds = time.monotonic() - run.started_mono
        self.change_state(ServerState.RUNNING, "ready", detail=line)
        run.ready.set()
        self._spawn_task(self._poll_players(run), run)

    async def _poll_players(self, run: GameRun) -> None:
        await poll_players(run.writer, self.players, run.exited, self._poll_seconds)

    # --- stopping and exits ----------------------------------------------------------------

    def begin_stop(self, run: GameRun, role: str) -> None:
        """A stop from now on: what ends the process next is an exit we asked for."""
        run.stop_requested = True
        self.change_state(ServerState.STOPPING, "stop_requested", role=role)

    async def _stop_then(self, run: GameRun, role: str, *, restart: bool) -> None:
        try:
            await escalate_stop(run, self._timings())
            await run.exited.wait()
            if restart:
                await self._launch(role)
        except Exception:
            logger.exception("game_server_stop_failed", role=role)
        finally:
            self.guard.action = None

    async def _watch(self, run: GameRun) -> None:
        status = await watch_output(run, self.console)
        self._exited(run, status)
        run.exited.set()

    def _exited(self, run: GameRun, status: int) -> None:
        self.last_exit = describe_exit(run, status, self.console.tail(LAST_LINES))
        error, ended_by = self.last_exit.error, self.last_exit.ended_by
        self.players.clear()
        self.restart_reasons.clear()
        detail = f"exit {status}, ended by {ended_by}"
        if run.stop_requested:
            self.change_state(ServerState.STOPPED, "stopped", detail=detail)
            return
        self.crash_count += 1
        self.change_state(ServerState.CRASHED, "crashed", detail=detail)
        if error is not None:
            # Restarting cannot help until someone installs the runtime.
            self.record("runtime_missing", detail=error.message)
            return
        self._after_crash()

    def _after_crash(self) -> None:
        gave_up = self._restarts.crashed(self._auto_restart)
        if gave_up is not None:
            self.record("gave_up", detail=gave_up)

    async def _auto_restart(self) -> None:
        if self._state is not ServerState.CRASHED or self.guard.busy:
            return
        self.guard.action = "start"
        try:
            self.record("auto_restart", role="supervisor")
            self.restarts["crash"] = self.restarts.get("crash", 0) + 1
            await self._launch("supervisor")
        except Exception as exc:
            logger.warning("game_server_auto_restart_failed", error=str(exc))
        finally:
            self.guard.action = None
