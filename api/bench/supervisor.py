"""Rows for the game server supervisor, each against a baseline measured in the same run.

The game server is always the fake (`tests/support/fake_vs_server.py`) as a real child process.

- console ingest, in this process: a fake floods 200,000 log lines (its `flood` hook) and our
  `GameServerService` parses them into its console buffer, watched through the facade's
  `console()`; against a bare asyncio `readline` loop on the same kind of pipe, from another
  fake flooding the same lines. Alternating rounds, median lines/s.
- ready line to `running`, in this process: many starts of a fast-starting fake; from the
  ready line's write (the fake's FAKE_VS_READY_MARK, CLOCK_MONOTONIC, which every process
  shares) to the facade's state listener hearing `running`; against a bare `readline` loop
  seeing the line. p99 of each.
- served: `python -m vintagestory_api` with the fake as its game server (auto start).
  `/healthz` p99 while its game server floods its console, against the same with the game
  server idle; then RSS (the console buffer full) and idle CPU beside the bare FastAPI app.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
from tests.support.fake_vs_client import FakeServerControl, fake_server_command

from bench.processes import free_port
from bench.report import Row, median, percentile
from bench.served import BARE, Bench, Server, probe, wait_until
from vintagestory_api.api_settings.service import API_SETTINGS_FILE
from vintagestory_api.gameserver.errors import LifecycleInProgress
from vintagestory_api.gameserver.exits import Timings
from vintagestory_api.gameserver.launch import LaunchConfig
from vintagestory_api.gameserver.process import STREAM_LIMIT, GameProcess, SubprocessLauncher
from vintagestory_api.gameserver.service import GameServerService
from vintagestory_api.gameserver.states import ServerState

SECTION = "supervisor"
FLOOD_LINES = 200_000
READY_TEXT = b"Dedicated Server now running on Port "
SERVER = "/api/v1alpha1/server"
# A start of about 0.1 s after the interpreter is up, a stop of about 0.06 s, one world write
# a second (the default interval at scale 1, not 50 a second).
FAKE_KNOBS = {
    "FAKE_VS_TIME_SCALE": "0.02",
    "FAKE_VS_STARTUP_S": "5",
    "FAKE_VS_STOP_S": "3",
    "FAKE_VS_WRITE_INTERVAL_S": "50",
}
TIMINGS = Timings(start_timeout=30, stop_timeout=30, kill_timeout=10, backoff=1, auto_restart=False)
DEADLINE = 60.0


@dataclass(frozen=True)
class Plan:
    flood_rounds: int
    starts: int
    lag_rounds: int
    probe_seconds: float
    idle_seconds: float
    settle_seconds: float


FULL = Plan(
    flood_rounds=3, starts=30, lag_rounds=3, probe_seconds=4, idle_seconds=15, settle_seconds=2
)
QUICK = Plan(
    flood_rounds=1, starts=4, lag_rounds=1, probe_seconds=1.5, idle_seconds=3, settle_seconds=1
)


def run(bench: Bench, *, quick: bool) -> list[Row]:
    plan = QUICK if quick else FULL
    rows = asyncio.run(_in_process(bench.workdir / "supervisor", plan))
    return rows + _served(bench, plan)


# --- in this process ------------------------------------------------------------------------


class _KnobLauncher:
    """The real launcher, with the fake's knobs added to the environment it inherits."""

    def __init__(self, knobs: Mapping[str, str]) -> None:
        self._real = SubprocessLauncher()
        self._knobs = dict(knobs)

    async def spawn(
        self, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str] | None = None
    ) -> GameProcess:
        return await self._real.spawn(argv, cwd=cwd, env={**(env or os.environ), **self._knobs})

    async def dotnet_runtimes(self) -> list[str] | None:
        return await self._real.dotnet_runtimes()


class _Ours:
    """Our facade over a fake, with an event per state its listener hears."""

    def __init__(self, workdir: Path, knobs: Mapping[str, str]) -> None:
        config = LaunchConfig(
            server_dir=workdir / "server",
            data_path=workdir / "serverdata",
            command=shlex.join(fake_server_command()),
            port=free_port(),
        )
        self.service = GameServerService(config, lambda: TIMINGS, launcher=_KnobLauncher(knobs))
        self.heard: dict[ServerState, float] = {}
        self._events = {state: asyncio.Event() for state in ServerState}
        self.service.add_state_listener(self._on_state)

    def _on_state(self, state: ServerState) -> None:
        self.heard[state] = time.monotonic()
        self._events[state].set()

    async def start(self) -> float:
        """Start and wait until running; when the listener heard it."""
        self._events[ServerState.RUNNING].clear()
        async with asyncio.timeout(DEADLINE):
            while True:
                try:
                    await self.service.start("bench")
                    break
                except LifecycleInProgress:
                    # The stop before this one is still finishing (a 409 over HTTP): retry.
                    await asyncio.sleep(0.001)
            await self._events[ServerState.RUNNING].wait()
        return self.heard[ServerState.RUNNING]

    async def stop(self) -> None:
        self._events[ServerState.STOPPED].clear()
        await self.service.stop("bench")
        async with asyncio.timeout(DEADLINE):
            await self._events[ServerState.STOPPED].wait()

    async def flood(self, control: FakeServerControl) -> float:
        """Seconds from asking for a flood to its last line being in the console buffer."""
        final = f"flood line {FLOOD_LINES} of {FLOOD_LINES}"
        before = self.service.console(limit=0).last_seq
        began = time.perf_counter()
        control.flood(FLOOD_LINES)
        async with asyncio.timeout(DEADLINE):
            while True:
                # The newest few: a player poll's reply may land after the flood's last line.
                newest = self.service.console(limit=5).entries
                if any(e.seq > before and e.text.endswith(final) for e in newest):
                    return time.perf_counter() - began
                await asyncio.sleep(0.005)


class _Bare:
    """A fake on pipes of the same kind, read by nothing but a `readline` loop."""

    def __init__(self, workdir: Path, knobs: Mapping[str, str]) -> None:
        self.argv = [
            *fake_server_command(),
            "--dataPath",
            str(workdir / "serverdata"),
            "--port",
            str(free_port()),
        ]
        self.env = {**os.environ, **knobs}
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> float:
        """Spawn and read until the ready line; when it was read."""
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv,
            env=self.env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
            limit=STREAM_LIMIT,
        )
        stdout = self._stdout()
        async with asyncio.timeout(DEADLINE):
            while line := await stdout.readline():
                if READY_TEXT in line:
                    return time.monotonic()
        raise RuntimeError("the bare fake ended before its ready line")

    def _stdout(self) -> asyncio.StreamReader:
        assert self.proc is not None
        assert self.proc.stdout is not None
        return self.proc.stdout

    async def flood(self, control: FakeServerControl) -> float:
        final = f"flood line {FLOOD_LINES} of {FLOOD_LINES}\n".encode()
        stdout = self._stdout()
        began = time.perf_counter()
        control.flood(FLOOD_LINES)
        async with asyncio.timeout(DEADLINE):
            while line := await stdout.readline():
                if line.endswith(final):
                    return time.perf_counter() - began
        raise RuntimeError("the bare fake ended during its flood")

    async def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        assert proc.stdin is not None
        try:
            proc.stdin.write(b"/stop\n")
            await proc.stdin.drain()
            async with asyncio.timeout(DEADLINE):
                await self._stdout().read()
                await proc.wait()
        except (ConnectionError, TimeoutError):
            proc.kill()
            await proc.wait()


async def _read_mark(path: Path) -> float:
    """The fake's ready mark; it writes it just after the ready line."""
    async with asyncio.timeout(DEADLINE):
        while True:
            try:
                return float(path.read_text())
            except (FileNotFoundError, ValueError):
                await asyncio.sleep(0.001)


async def _in_process(workdir: Path, plan: Plan) -> list[Row]:
    rates: dict[str, list[float]] = {"ours": [], "bare": []}
    latency: dict[str, list[float]] = {"ours": [], "bare": []}
    marks = {name: workdir / f"{name}-ready.mark" for name in ("ours", "bare")}
    fifos = {name: workdir / f"{name}-control.fifo" for name in ("ours", "bare")}
    workdir.mkdir(parents=True)
    ours = _Ours(workdir / "ours", {**FAKE_KNOBS, "FAKE_VS_READY_MARK": str(marks["ours"])})
    bare = _Bare(workdir / "bare", {**FAKE_KNOBS, "FAKE_VS_READY_MARK": str(marks["bare"])})
    try:
        # Ready latency: a fresh process per start, alternating which goes first.
        for n in range(plan.starts):
            for name in ("ours", "bare") if n % 2 == 0 else ("bare", "ours"):
                marks[name].unlink(missing_ok=True)
                heard = await (ours.start() if name == "ours" else bare.start())
                latency[name].append((heard - await _read_mark(marks[name])) * 1000)
                await (ours.stop() if name == "ours" else bare.stop())
        # Ingest: one process each, flooded in alternating rounds.
        knobs = {name: {**FAKE_KNOBS, "FAKE_VS_CONTROL": str(fifos[name])} for name in fifos}
        flood_ours = _Ours(workdir / "flood-ours", knobs["ours"])
        flood_bare = _Bare(workdir / "flood-bare", knobs["bare"])
        try:
            await flood_ours.start()
            await flood_bare.start()
            controls = {name: FakeServerControl(fifo) for name, fifo in fifos.items()}
            for n in range(plan.flood_rounds):
                for name in ("ours", "bare") if n % 2 == 0 else ("bare", "ours"):
                    side = flood_ours if name == "ours" else flood_bare
                    rates[name].append(FLOOD_LINES / await side.flood(controls[name]))
        finally:
            await flood_bare.stop()
            await flood_ours.service.close()
    finally:
        await bare.stop()
        await ours.service.close()
    bare_name = "bare asyncio readline loop"
    return [
        Row(SECTION, f"console ingest, {FLOOD_LINES:,} flooded lines", "lines/s",
            median(rates["ours"]), median(rates["bare"]), bare_name, "ratio_min", 0.5,
            rounds=plan.flood_rounds,
            detail={"per_round_lines_per_s": rates,
                    "ours": "GameServerService: parsed, continuation lines joined, line "
                            "handlers run, entries in the 10,000-entry ring"}),
        Row(SECTION, "ready line written to state running: p50", "ms",
            percentile(latency["ours"], 50), percentile(latency["bare"], 50), bare_name,
            "abs_max", float("nan"), rounds=plan.starts),
        Row(SECTION, f"ready line written to state running: p99 of {plan.starts} starts", "ms",
            percentile(latency["ours"], 99), percentile(latency["bare"], 99), bare_name,
            "abs_max", 50.0, rounds=plan.starts,
            detail={"per_start_ms": {k: [round(v, 3) for v in vs] for k, vs in latency.items()}}),
    ]  # fmt: skip


# --- served ---------------------------------------------------------------------------------


def _auto_start(data_dir: Path) -> None:
    state = data_dir / "state"
    state.mkdir(parents=True, exist_ok=True)
    (state / API_SETTINGS_FILE).write_text(json.dumps({"server_auto_start": True}))


def _console(server: Server, limit: int) -> dict[str, object]:
    data: dict[str, object] = server.get(f"{SERVER}/console?limit={limit}")["data"]
    return data


def _flood_done(server: Server, before: int) -> bool:
    final = f"flood line {FLOOD_LINES} of {FLOOD_LINES}"
    entries = _console(server, 5)["entries"]
    assert isinstance(entries, list)
    return any(e["seq"] > before and e["text"].endswith(final) for e in entries)


def _probe_floods(
    server: Server, control: FakeServerControl, seconds: float
) -> tuple[list[float], int]:
    """`/healthz` latencies while floods follow one another for at least `seconds`."""
    samples: list[float] = []
    floods = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        before = _console(server, 1)["last_seq"]
        assert isinstance(before, int)
        control.flood(FLOOD_LINES)
        floods += 1
        stop = threading.Event()
        probe: list[float] = []
        thread = threading.Thread(target=_probe_until, args=(server, stop, probe))
        thread.start()
        try:
            wait_until(
                "the flood to be read", lambda seq=before: _flood_done(server, seq), DEADLINE
            )
        finally:
            stop.set()
            thread.join()
        samples += probe
    return samples, floods


def _probe_until(server: Server, stop: threading.Event, into: list[float]) -> None:
    """Sequential GET /healthz, one every 10 ms, until `stop`."""
    with httpx.Client(timeout=10) as client:
        next_at = time.perf_counter()
        while not stop.is_set():
            began = time.perf_counter()
            client.get(server.base + "/healthz").raise_for_status()
            into.append((time.perf_counter() - began) * 1000)
            next_at += 0.01
            time.sleep(max(0.0, next_at - time.perf_counter()))


def _served(bench: Bench, plan: Plan) -> list[Row]:
    if not bench.payload.exists():
        bench.payload.write_text('{"/healthz": {}, "/api/v1alpha1/jobs": {}}')
    fifo = bench.workdir / "served-control.fifo"
    env = {
        **FAKE_KNOBS,
        "FAKE_VS_CONTROL": str(fifo),
        "VS_SERVER_COMMAND": shlex.join(fake_server_command()),
        "VS_SERVER_PORT": str(free_port()),
    }
    idle: list[float] = []
    busy: list[float] = []
    floods = 0
    game_pid: int | None = None
    with (
        bench.ours(bench_app=False, extra_env=env, prepare=_auto_start) as ours,
        bench.bare() as bare,
    ):
        ours.ready()
        bare.ready()
        wait_until("the game server to run", lambda: ours.get(SERVER)["data"]["state"] == "running")
        game_pid = ours.get(SERVER)["data"]["pid"]
        rss_before = ours.child.rss_mib()
        control = FakeServerControl(fifo)
        for n in range(plan.lag_rounds):
            for state in ("idle", "busy") if n % 2 == 0 else ("busy", "idle"):
                if state == "idle":
                    idle.append(percentile(probe(ours, plan.probe_seconds), 99))
                    continue
                samples, count = _probe_floods(ours, control, plan.probe_seconds)
                busy.append(percentile(samples, 99))
                floods += count
        rss_flooded = ours.child.rss_mib()
        probe(bare, 1.0)  # the bare app's request path used too, as ours has been
        # The last flood's entries published, the player poll answered.
        time.sleep(plan.settle_seconds)
        before = {"ours": ours.child.cpu_seconds(), "bare": bare.child.cpu_seconds()}
        started = time.perf_counter()
        time.sleep(plan.idle_seconds)
        wall = time.perf_counter() - started
        cpu = {name: (child.cpu_seconds() - before[name]) / wall * 100
               for name, child in (("ours", ours.child), ("bare", bare.child))}  # fmt: skip
        # The steady state, idle with a full console: just after a flood, freed read buffers
        # may not have gone back to the OS yet (that figure is in the detail).
        rss = {"ours": ours.child.rss_mib(), "bare": bare.child.rss_mib()}
        still = ours.get(SERVER)["data"]
        # Read after the footprint: a 10,000-entry response costs memory of its own.
        entries = len(_console(ours, 10_000)["entries"])  # type: ignore[arg-type]
    left_running = _reap(game_pid)
    if still["state"] != "running" or still["pid"] != game_pid:
        raise RuntimeError(f"the served game server did not stay up: {still}")
    return [
        Row(SECTION, "served /healthz p99 while the game server floods its console", "ms",
            median(busy), median(idle), "same service, game server idle", "abs_max", 50.0,
            rounds=plan.lag_rounds,
            detail={"floods": floods, "lines_per_flood": FLOOD_LINES,
                    "probe": "sequential GET /healthz every 10 ms",
                    "per_round": {"idle_p99": idle, "busy_p99": busy}}),
        Row(SECTION, "RSS idle, game server running, console buffer full", "MiB", rss["ours"],
            rss["bare"], BARE, "ratio_max", 1.5, rounds=1,
            detail={"ours_before_floods_mib": round(rss_before, 1),
                    "ours_just_after_last_flood_mib": round(rss_flooded, 1),
                    "console_entries": entries,
                    "measured": f"after the {plan.idle_seconds:g} s idle CPU window"}),
        Row(SECTION, f"idle CPU over {plan.idle_seconds:g} s, game server running", "%",
            cpu["ours"], cpu["bare"], BARE, "abs_max", 1.0, rounds=1,
            detail={"side_by_side": True, "game_server_left_running": left_running}),
    ]  # fmt: skip


def _reap(pid: int | None) -> bool:
    """After the API's SIGTERM its game server must be gone; kill it if not (and say so)."""
    if pid is None or not psutil.pid_exists(pid):
        return False
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        process.kill()
    except psutil.NoSuchProcess:
        return False
    return True
