"""The game server facade: what routes and other domains call, never the internals.

Other domains (backups, mods, schedules) take `lifecycle()` around work that must not overlap
a start or stop, read `status()`, `pid`, `installed_version()` and `players()`, send console
commands, and note with `add_restart_reason()` that the running process is out of date. A holder
stops through `stop_and_wait` (the shielded handover stop); the installer starts again through
`start_held`, which waits for ready.
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
from .handover import start_and_wait, stop_and_wait
from .launch import LaunchConfig, check_runtime
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
        stream=entry.stream,
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
        self._launcher = launcher or SubprocessLauncher()
        self._timings = timings
        self._supervisor = Supervisor(
            config, self._launcher, timings, players_poll_seconds=players_poll_seconds
        )

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def state(self) -> ServerState:
        return self._supervisor.state

    @property
    def held_by(self) -> str | None:
        """Who holds the server through `lifecycle()` (e.g. "a world backup"), if anyone."""
        return self._supervisor.guard.held_by

    @property
    def pid(self) -> int | None:
        run = self._supervisor.run
        return run.process.pid if run is not None else None

    def add_state_listener(self, listener: Callable[[ServerState], None]) -> None:
        """`listener(new_state)` after every change of state, called in the changing code's
        own step (the ready line's read, an exit's reaping), so it sees each change at once."""
        self._supervisor.add_state_listener(listener)

    async def start(self, role: str, *, holder: str | None = None) -> bool:
        """True when a start began; False when it was already starting or running.

        `holder`: the hold (see `lifecycle`) this start is part of; anyone else is refused
        while it is held.
        """
        return await self._supervisor.start(role, holder=holder)

    async def stop(self, role: str, *, holder: str | None = None) -> bool:
        """True when a stop began; False when there was no process to stop."""
        return await self._supervisor.stop(role, holder=holder)

    async def stop_and_wait(self, role: str, *, holder: str) -> None:
        """For the holder of `lifecycle()`: stop gracefully and return once the process has
        exited. API shutdown meanwhile does not cut the stop short, and a stop that is part of
        a hold leaves `should_run` as it was (the holder starts it again)."""
        self._supervisor.guard.check_holder(holder)
        await stop_and_wait(self._supervisor, self._timings, role)

    async def restart(self, role: str, *, holder: str | None = None) -> bool:
        return await self._supervisor.restart(role, holder=holder)

    @property
    def busy_with(self) -> str | None:
        """The lifecycle action in progress or the holder, if any (what a 409 would name)."""
        guard = self._supervisor.guard
        return guard.action or guard.held_by

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
        """Hold off starts, stops and restarts (409 SERVER_BUSY meanwhile) while `holder`
        works; `holder` reads as the subject of "... holds the game server"."""
        guard = self._supervisor.guard
        # Refused (409 SERVER_BUSY naming who) during a start, stop or restart, or another hold.
        guard.hold(holder)
        try:
            yield
        finally:
            guard.release(holder)

    # --- installed versions ----------------------------------------------------------------

    @property
    def launch_config(self) -> LaunchConfig:
        return self._supervisor.config

    def installed_version(self) -> str | None:
        """The current version (reads the file system: call from a thread where it matters)."""
        return self._supervisor.config.installed_version()

    async def check_runtime(self, version: str) -> None:
        """DotnetRuntimeMissing when `version` could not run here (nothing with a command)."""
        await check_runtime(self._supervisor.config, self._launcher, version)

    async def start_held(self, holder: str, role: str) -> str | None:
        """For the holder of `lifecycle()`: start and wait until ready; None, or why not."""
        self._supervisor.guard.check_holder(holder)
        return await start_and_wait(self._supervisor, self._timings, holder, role)

    def version_switched(self, detail: str) -> None:
        """The current version changed on disk: take its version, leave not_installed."""
        sup = self._supervisor
        sup.version = sup.config.installed_version()
        if sup.state is ServerState.NOT_INSTALLED and sup.config.installed:
            sup.change_state(ServerState.STOPPED, "version_switched", detail=detail)
        else:
            sup.record("version_switched", detail=detail)

    def status(self) -> ServerStatus:
        sup = self._supervisor
        run = sup.run
        ready_at = run.ready_at if run is not None else None
        uptime = (datetime.now(UTC) - ready_at).total_seconds() if ready_at else None
        return ServerStatus(
            state=sup.state,
            version=sup.version,
            installed_version=sup.config.installed_version(),
            previous_version=sup.config.previous_version(),
            pid=self.pid,
            started_at=run.started_at if run is not None else None,
            ready_at=ready_at,
            uptime_seconds=round(uptime, 3) if uptime is not None else None,
            players_online=self.players_online,
            last_exit=sup.last_exit,
            restart_pending=RestartPending(
                pending=sup.restart_at is not None or bool(sup.restart_reasons),
                reasons=(["crash"] if sup.restart_at is not None else []) + sup.restart_reasons,
                at=sup.restart_at,
            ),
            crash_loop=sup.crash_loop,
        )

    def add_restart_reason(self, reason: str) -> bool:
        """Another domain changed what the running game server loaded at its start (a mod):
        `restart_pending` shows `reason` until the next start. False (nothing noted) when no
        process is starting or running, since the next start reads the new files anyway."""
        return self._supervisor.add_restart_reason(reason)

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

    # Numbers for the metrics samples and the Prometheus exposition.
    @property
    def players_online(self) -> int | None:
        """None when it is not running; only a running server has players."""
        sup = self._supervisor
        return sup.players.count if sup.state is ServerState.RUNNING else None

    @property
    def should_run(self) -> bool:
        """Whether the last start, restart or stop taken asked for it to run."""
        return self._supervisor.should_run

    @property
    def crash_loop(self) -> bool:
        return self._supervisor.crash_loop

    @property
    def restarts(self) -> dict[str, int]:
        """Restarts by reason (`crash`: automatic, `requested`: POST /server/restart)."""
        return dict(self._supervisor.restarts)

    @property
    def crash_count(self) -> int:
        return self._supervisor.crash_count

    @property
    def ready_seconds(self) -> float | None:
        """Spawn to ready line of the last start that got there; None before the first."""
        return self._supervisor.last_ready_seconds

    # --- console and players ---------------------------------------------------------------

    def console(self, *, limit: int, after_seq: int | None = None) -> ConsoleLines:
        buffer = self._supervisor.console
        entries = buffer.entries(limit=limit, after_seq=after_seq)
        return ConsoleLines(entries=[_line(e) for e in entries], last_seq=buffer.last_seq)

    def subscribe(self) -> Subscription:
        """A live feed of every new entry (bounded: a slow reader loses the oldest, counted);
        `unsubscribe` it when done. The API's shutdown closes every one."""
        return self._supervisor.console.subscribe()

    @property
    def subscriber_count(self) -> int:
        """How many live console feeds are open (one per console WebSocket)."""
        return self._supervisor.console.subscriber_count

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

    async def post_command(self, command: str) -> bool:
        """Send a slash command and return once it is echoed (True) or the echo wait ended,
        without waiting for a reply window: for callers that watch `subscribe()` themselves."""
        if not command.startswith("/") or text_problem(command) is not None:
            raise InvalidCommand("body.command: must be one line starting with /")
        run = self._supervisor.run
        if run is None or self._supervisor.state is not ServerState.RUNNING:
            raise ServerNotRunning(
                f"the game server is {self._supervisor.state}; commands need it running"
            )
        try:
            _, echoed = await run.writer.send(command)
        except ConnectionError as exc:
            raise ServerNotRunning(f"the game server's console is gone: {exc}") from None
        return echoed

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
            entries = await run.writer.request(line)
        except ConnectionError as exc:
            raise ServerNotRunning(f"the game server's console is gone: {exc}") from None
        echoed = any(e.text.startswith("Handling Console Command ") for e in entries)
        return CommandReply(sent=line, echoed=echoed, lines=[_line(e) for e in entries])

    async def poll_players(self) -> PlayerList:
        """Who is online by a fresh `/stats compact` poll, not by the joins and leaves seen
        since the last one (which drift); the tracked list when the poll gets no answer."""
        await self._refresh_players()
        return self.players()

    async def _refresh_players(self) -> bool:
        """One `/stats compact` poll now; False when the server is not running to answer."""
        run = self._supervisor.run
        if run is None or self._supervisor.state is not ServerState.RUNNING:
            return False
        try:
            reply = await run.writer.request("/stats compact", wait_for="Players online:")
        except ConnectionError:
            return False
        return any(self._supervisor.players.reconcile(entry.text) for entry in reply)

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
