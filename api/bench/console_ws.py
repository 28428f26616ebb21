"""Console WebSocket fan-out to 20 clients: the served API against a bare `websockets` server.

Both sides get their lines the same way: the bench writes chat hooks to the fake game server's
control FIFO, the fake prints each as a console line on its stdout, and the server reads the
pipe and sends every line to 20 WebSocket clients of this process. Ours is the real service
(`python -m vintagestory_api`) supervising the fake, its console parsed into the ring buffer
and fanned out through one bounded subscription per socket; the baseline
(`python -m bench.console_ws bare PORT`) runs the same fake with the same knobs, reads its
stdout with a bare `readline` loop and hands each line, as a JSON message of the same fields,
to `websockets.broadcast`. Two phases per round, the servers alternating which goes first:

- burst: `burst` lines written at once; entries/s delivered to every one of the 20 clients
  (lines over the time from the first write to the last line reaching the last client);
- paced: 100 lines a second; for each line, the time from its write to its arrival at the
  last of the 20 clients, p99 over the lines.

The 20 clients share this one Python process, which takes about as many messages a second as
either server sends: the burst rate says that ours keeps up, the CPU row (the server process's
CPU seconds over the burst, the fake's not included) what each message costs it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.http11 import Request, Response

from bench.processes import API_DIR, Child, free_port
from bench.report import Row, median, percentile
from bench.served import HEADERS, Bench

SECTION = "console-ws"
CLIENTS = 20
COMPRESSION: str | None = os.environ.get("BENCH_WS_COMPRESSION") or None
PACED_RATE = 100
PACED_SECONDS = 2.0
BARE_WS = "bare websockets broadcast"
FAKE = API_DIR / "tests" / "support" / "fake_vs_server.py"
SOCKET = "/api/v1alpha1/server/console/ws"
READY = "Dedicated Server now running on Port"
# The bench's lines: "bench <phase> <n> <monotonic ns at write>", as the fake prints a chat.
MARK = re.compile(r"bench ([bp]) (\d+) (\d+)")


def _fake_env(fifo: Path) -> dict[str, str]:
    return {
        "FAKE_VS_CONTROL": str(fifo),
        "FAKE_VS_TIME_SCALE": "0.01",
        # No world ticks: the lines on the pipe are the bench's own.
        "FAKE_VS_WRITE_INTERVAL_S": "0",
    }


@dataclass
class Collector:
    """One client's arrivals: monotonic ns per line number, per phase; dropped counts."""

    burst: dict[int, int] = field(default_factory=dict)
    paced: dict[int, int] = field(default_factory=dict)
    dropped: int = 0


async def _read(ws: ClientConnection, collector: Collector) -> None:
    async for raw in ws:
        now = time.monotonic_ns()
        text = raw if isinstance(raw, str) else raw.decode()
        found = MARK.search(text)
        if found is not None:
            phase, n = found.group(1), int(found.group(2))
            (collector.burst if phase == "b" else collector.paced)[n] = now
        elif '"dropped"' in text:
            collector.dropped += json.loads(text)["count"]


class FifoWriter:
    """Writes hook lines to the fake's control FIFO from a thread, so the clients read on."""

    def __init__(self, fifo: Path) -> None:
        # The fake holds the FIFO open for reading from its start: this open does not block.
        self._fd = os.open(fifo, os.O_WRONLY)

    def burst(self, count: int) -> int:
        began = time.monotonic_ns()
        lines = "".join(f"chat bench bench b {n} {began}\n" for n in range(count))
        data = lines.encode()
        while data:
            data = data[os.write(self._fd, data) :]
        return began

    def paced(self, rate: float, seconds: float) -> dict[int, int]:
        written: dict[int, int] = {}
        every = 1 / rate
        next_at = time.monotonic()
        for n in range(int(rate * seconds)):
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            at = time.monotonic_ns()
            os.write(self._fd, f"chat bench bench p {n} {at}\n".encode())
            written[n] = at
            next_at += every
        return written

    def close(self) -> None:
        os.close(self._fd)


@dataclass
class Trial:
    burst_rate: float
    paced_p99_ms: float
    paced_p50_ms: float
    dropped: int
    burst_seconds: float
    cpu_ms_per_1k: float


async def _trial(
    url: str, headers: dict[str, str], fifo: Path, burst: int, cpu: Callable[[], float]
) -> Trial:
    sockets = [
        await connect(url, additional_headers=headers, compression=COMPRESSION)
        for _ in range(CLIENTS)
    ]
    collectors = [Collector() for _ in sockets]
    readers = [asyncio.create_task(_read(ws, c)) for ws, c in zip(sockets, collectors, strict=True)]
    writer = FifoWriter(fifo)
    try:
        cpu_before = cpu()
        began = await asyncio.to_thread(writer.burst, burst)
        await _until(lambda: all(len(c.burst) + c.dropped >= burst for c in collectors), 120)
        cpu_used = cpu() - cpu_before
        ended = max(max(c.burst.values()) for c in collectors)
        written = await asyncio.to_thread(writer.paced, PACED_RATE, PACED_SECONDS)
        # Ours holds a line for up to 50 ms for continuation lines when the pipe goes quiet.
        await _until(lambda: all(len(c.paced) >= len(written) for c in collectors), 30)
    finally:
        writer.close()
        for ws in sockets:
            await ws.close()
        await asyncio.gather(*readers, return_exceptions=True)
    delivered = min(len(c.burst) for c in collectors)
    seconds = (ended - began) / 1e9
    to_all = [(max(c.paced[n] for c in collectors) - at) / 1e6 for n, at in sorted(written.items())]
    return Trial(
        burst_rate=delivered / seconds,
        paced_p99_ms=percentile(to_all, 99),
        paced_p50_ms=percentile(to_all, 50),
        dropped=max(c.dropped for c in collectors),
        burst_seconds=round(seconds, 3),
        cpu_ms_per_1k=cpu_used * 1000 / (burst * CLIENTS / 1000),
    )


async def _until(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out waiting for every client to get every line")
        await asyncio.sleep(0.005)


def _ours(bench: Bench, fifo: Path, burst: int) -> Trial:
    env = {"VS_SERVER_COMMAND": f"{sys.executable} {FAKE}", **_fake_env(fifo)}
    with bench.ours(bench_app=False, extra_env=env) as server:
        server.ready()
        server.post("/api/v1alpha1/server/start")
        deadline = time.monotonic() + 30
        while server.get("/api/v1alpha1/server")["data"]["state"] != "running":
            if time.monotonic() > deadline:
                raise RuntimeError("the fake game server did not become ready")
            time.sleep(0.02)
        url = server.base.replace("http://", "ws://") + SOCKET + "?last=0"
        return asyncio.run(_trial(url, HEADERS, fifo, burst, server.child.cpu_seconds))


def _bare(bench: Bench, fifo: Path, burst: int) -> Trial:
    port = free_port()
    log = bench.workdir / f"bare-ws-{port}.log"
    data_path = bench.workdir / f"bare-ws-{port}-serverdata"
    child = Child.python(
        "bare-ws",
        ["-m", "bench.console_ws", "bare", str(port), str(data_path)],
        _fake_env(fifo),
        log,
    )
    try:
        child.wait_ok(f"http://127.0.0.1:{port}/ready")
        return asyncio.run(_trial(f"ws://127.0.0.1:{port}/", {}, fifo, burst, child.cpu_seconds))
    finally:
        child.stop()


def run(bench: Bench) -> list[Row]:
    plan = bench.plan
    burst = 2_000 if plan.rounds == 1 else 5_000
    trials: dict[str, list[Trial]] = {"ours": [], "bare": []}
    for n in range(plan.rounds):
        order = ("ours", "bare") if n % 2 == 0 else ("bare", "ours")
        for kind in order:
            fifo = bench.workdir / f"console-ws-{kind}-{n}.fifo"
            run_one = _ours if kind == "ours" else _bare
            trials[kind].append(run_one(bench, fifo, burst))
    ours, bare = trials["ours"], trials["bare"]
    detail: dict[str, object] = {
        "burst_lines": burst,
        "paced": f"{PACED_RATE} lines/s for {PACED_SECONDS:g} s",
        "ours_dropped_per_client": [t.dropped for t in ours],
        "ours_burst_seconds": [t.burst_seconds for t in ours],
        "bare_burst_seconds": [t.burst_seconds for t in bare],
        "ours_paced_p50_ms": round(median([t.paced_p50_ms for t in ours]), 2),
        "bare_paced_p50_ms": round(median([t.paced_p50_ms for t in bare]), 2),
    }
    return [
        Row(SECTION, f"fan-out to {CLIENTS} clients, {burst:,}-line burst", "entries/s/client",
            median([t.burst_rate for t in ours]), median([t.burst_rate for t in bare]),
            BARE_WS, "ratio_min", 0.5, rounds=plan.rounds, detail=detail),
        Row(SECTION, f"line to all {CLIENTS} clients p99, {PACED_RATE} lines/s", "ms",
            median([t.paced_p99_ms for t in ours]), median([t.paced_p99_ms for t in bare]),
            BARE_WS, "abs_max", 100.0, rounds=plan.rounds),
        Row(SECTION, f"server CPU per 1,000 messages sent, {burst:,}-line burst", "ms",
            median([t.cpu_ms_per_1k for t in ours]), median([t.cpu_ms_per_1k for t in bare]),
            BARE_WS, "ratio_max", float("nan"), rounds=plan.rounds),
    ]  # fmt: skip


# -- the baseline server --------------------------------------------------------------------------


async def _bare_server(port: int, data_path: Path) -> None:
    """The fake under a bare readline loop, every line broadcast to every connected client,
    until SIGTERM, which stops the fake too (it must not outlive this process)."""
    clients: set[ServerConnection] = set()
    ready = asyncio.Event()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    async def handler(ws: ServerConnection) -> None:
        clients.add(ws)
        try:
            await ws.wait_closed()
        finally:
            clients.discard(ws)

    def health(connection: ServerConnection, request: Request) -> Response | None:
        # Plain GET /ready: 200 once the fake printed its ready line (Child.wait_ok polls it).
        if request.path != "/ready":
            return None
        if ready.is_set():
            return connection.respond(200, "ready\n")
        return connection.respond(503, "starting\n")

    process = await asyncio.create_subprocess_exec(
        sys.executable, str(FAKE), "--dataPath", str(data_path), "--port", "0",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout = process.stdout
    assert stdout is not None

    async def pump() -> None:
        seq = 0
        while line := await stdout.readline():
            text = line.decode("utf-8", "replace").rstrip("\n")
            if READY in text:
                ready.set()
            seq += 1
            # The fields ours sends, built the cheapest way.
            stamp, _, rest = text.partition(" [Server ")
            kind, _, message = rest.partition("] ")
            broadcast(clients, json.dumps({
                "kind": "entry", "seq": seq, "time": datetime.now(UTC).isoformat(),
                "type": kind, "text": message, "server_time": stamp, "stream": "stdout",
            }))  # fmt: skip

    async with serve(handler, "127.0.0.1", port, process_request=health):
        reader = asyncio.create_task(pump())
        await stop.wait()
        process.terminate()
        await process.wait()
        await reader


def main(argv: Sequence[str]) -> int:
    if len(argv) != 3 or argv[0] != "bare":
        print("usage: python -m bench.console_ws bare PORT DATA_PATH", file=sys.stderr)
        return 2
    asyncio.run(_bare_server(int(argv[1]), Path(argv[2])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
