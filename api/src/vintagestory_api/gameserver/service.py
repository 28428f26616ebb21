"""The game server facade: what routes and other domains call, never the internals.

Other domains (backups, schedules) take `lifecycle()` around work that must not overlap a
start or stop, read `status()`, `pid` and `players()`, and send console commands.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

from vintagestory_api.kit.schemas import ComponentHealth

from .console import ConsoleEntry, Subscription
from .errors import InvalidCommand, ServerNotRunning
from .exits import Timings
from .launch import LaunchConfig
from .process import Launcher, SubprocessLauncher
from .schemas import (
    CommandReply,
    ConsoleLine,
    ConsoleLines,
    LifecycleEvents,
    Player,
    PlayerList,
    RestartPending,
    ServerStatus,
    text_problem,
)
from .states import ServerState
from .supervisor import Supervisor


def _line(entry: ConsoleEntry) -> ConsoleLine:
    return ConsoleLine(
        seq=entry.seq,
        time=entry.time,
        type=entry.type,
        text=entry.text,
        server_time=entry.server_time,
    )


class GameServerService:
    def __init__(
        self,
        config: LaunchConfig,
        timings: Callable[[], Timings],
        *,
        launcher: Launcher | None = None,
        players_poll_seconds: float = 60.0,
    ) -> None:
        self._supervisor = Supervisor(
            config,
            launcher or SubprocessLauncher(),
            timings,
            players_poll_seconds=players_poll_seconds,
        )

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def state(self) -> ServerState:
        return self._supervisor.state

    @property
    def pid(self) -> int | None:
        run = self._supervisor.run
        return run.process.pid if run is not None else None

    async def start(self, role: str, *, holder: str | None = None) -> bool:
        """True when a start began; False when it was already starting or running.

        `holder`: the hold (see `lifecycle`) this start is part of; anyone else is refused
        while it is held.
        """
        return await self._supervisor.start(role, holder=holder)

    async def stop(self, role: str, *, holder: str | None = None) -> bool:
        """True when a stop began; False when there was no process to stop."""
        return await self._supervisor.stop(role, holder=holder)

    async def restart(self, role: str, *, holder: str | None = None) -> bool:
        return await self._supervisor.restart(role, holder=holder)

    @property
    def busy_with(self) -> str | None:
        """The lifecycle action in progress or the holder, if any (what a 409 would name)."""
        return self._supervisor.action or self._supervisor.held_by

    async def wait_for_state(self, done: Callable[[ServerState], bool]) -> ServerState:
        """Wait until `done(state)` holds, checked now and at every state change; bound it
        with a timeout."""
        changed = asyncio.Event()

        def listener(_: ServerState) -> None:
            changed.set()

        self._supervisor.add_state_listener(listener)
        try:
            while not done(self._supervisor.state):
                await changed.wait()
                changed.clear()
            return self._supervisor.state
        finally:
            self._supervisor.remove_state_listener(listener)

    async def close(self) -> None:
        await self._supervisor.close()

    @contextlib.asynccontextmanager
    async def lifecycle(self, holder: str) -> AsyncIterator[None]:
        """Hold off starts, stops and restarts (409 meanwhile) while `holder` works."""
        supervisor = self._supervisor
        # Refused (409 SERVER_BUSY naming who) during a start, stop or restart, or another hold.
        supervisor.hold(holder)
        try:
            yield
        finally:
            supervisor.release(holder)

    def status(self) -> ServerStatus:
        sup = self._supervisor
        run = sup.run
        ready_at = run.ready_at if run is not None else None
        uptime = (datetime.now(UTC) - ready_at).total_seconds() if ready_at else None
        return ServerStatus(
            state=sup.state,
            version=sup.version,
            pid=self.pid,
            started_at=run.started_at if run is not None else None,
            ready_at=ready_at,
            uptime_seconds=round(uptime, 3) if uptime is not None else None,
            players_online=sup.players.count if sup.state is ServerState.RUNNING else None,
            last_exit=sup.last_exit,
            restart_pending=RestartPending(
                pending=sup.restart_at is not None,
                reasons=["crash"] if sup.restart_at is not None else [],
                at=sup.restart_at,
            ),
            crash_loop=sup.crash_loop,
        )

    def events(self, limit: int) -> LifecycleEvents:
        return LifecycleEvents(events=list(reversed(self._supervisor.events))[:limit])

    def health(self) -> ComponentHealth:
        sup = self._supervisor
        if sup.crash_loop:
            return ComponentHealth(
                status="degraded",
                reason="the game server crashed repeatedly; automatic restarts have stopped "
                "until an admin starts it",
            )
        last = sup.last_exit
        if sup.state is ServerState.CRASHED and last is not None and last.error is not None:
            return ComponentHealth(status="degraded", reason=last.error.message)
        return ComponentHealth(status="ok")

    # Numbers for the Prometheus exposition.
    @property
    def restarts(self) -> dict[str, int]:
        return dict(self._supervisor.restarts)

    @property
    def crash_count(self) -> int:
        return self._supervisor.crash_count

    @property
    def ready_seconds(self) -> float | None:
        run = self._supervisor.run
        return run.ready_seconds if run is not None else None

    # --- console and players ---------------------------------------------------------------

    def console(self, *, limit: int, after_seq: int | None = None) -> ConsoleLines:
        buffer = self._supervisor.console
        entries = buffer.entries(limit=limit, after_seq=after_seq)
        return ConsoleLines(entries=[_line(e) for e in entries], last_seq=buffer.last_seq)

    def subscribe(self) -> Subscription:
        return self._supervisor.console.subscribe()

    def unsubscribe(self, subscription: Subscription) -> None:
        self._supervisor.console.unsubscribe(subscription)

    def recent_lines(self, limit: int) -> list[ConsoleLine]:
        return [_line(e) for e in self._supervisor.console.entries(limit=limit)]

    async def send_command(self, command: str) -> CommandReply:
        """A slash command, answered with its echo and the reply lines after it."""
        problem = text_problem(command)
        if problem is not None:
            raise InvalidCommand(f"body.command: {problem}")
        if not command.startswith("/"):
            raise InvalidCommand(
                "body.command: must start with / (text without it is broadcast to every "
                "player as chat; send it as say to mean that)"
            )
        return await self._send(command)

    async def say(self, text: str) -> CommandReply:
        """Broadcast `text` as chat from Admin (the console's meaning of text without /)."""
        problem = text_problem(text)
        if problem is not None:
            raise InvalidCommand(f"body.say: {problem}")
        if text.lstrip().startswith(("/", ".")):
            raise InvalidCommand("body.say: must not start with / or . (use command)")
        return await self._send(text)

    async def _send(self, line: str) -> CommandReply:
        run = self._supervisor.run
        if run is None or self._supervisor.state is not ServerState.RUNNING:
            raise ServerNotRunning(
                f"the game server is {self._supervisor.state}; commands need it running"
            )
        try:
            entries = await self._supervisor.command(run, line)
        except ConnectionError as exc:
            raise ServerNotRunning(f"the game server's console is gone: {exc}") from None
        echoed = any(e.text.startswith("Handling Console Command ") for e in entries)
        return CommandReply(sent=line, echoed=echoed, lines=[_line(e) for e in entries])

    async def poll_players(self) -> PlayerList:
        """Who is online by a fresh `/stats compact` poll, not by the joins and leaves seen
        since the last one (which drift); the tracked list when the poll gets no answer."""
        await self._supervisor.refresh_players()
        return self.players()

    def players(self) -> PlayerList:
        tracker = self._supervisor.players
        running = self._supervisor.state is ServerState.RUNNING
        online = tracker.online() if running else {}
        return PlayerList(
            players=[Player(name=n, online_since=t) for n, t in sorted(online.items())],
            count=len(online),
            max_clients=tracker.max_clients,
            polled_at=tracker.polled_at,
        )
