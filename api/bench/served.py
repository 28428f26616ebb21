"""Rows measured against real server processes: throughput, responsiveness, footprint, startup.

Ours is always a real `python -m vintagestory_api`-style process (the service's own `main`),
the baseline a bare FastAPI app under plain uvicorn (bench.apps). They are measured one after
the other, alternating which goes first, except idle CPU, where both idle side by side.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import zoneinfo
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench import load
from bench.bare import JOBS_PATH
from bench.processes import Child, free_port
from bench.report import Row, median, percentile
from vintagestory_api.scheduler.run_store import RunStore
from vintagestory_api.scheduler.schemas import JobRun

ADMIN_KEY = "bench-admin-key-0123456789abcdef"
HEADERS = {"X-API-Key": ADMIN_KEY}
BENCH_JOBS = 50
CONNECTIONS = 16
STUB_DELAY_MS = 200
BARE = "bare FastAPI"
# A served process that dies before answering (on a shared machine, something else may signal
# it) is started again; the rows report how often that happened.
ATTEMPTS = 3


@dataclass(frozen=True)
class Plan:
    rounds: int
    load_seconds: float
    probe_seconds: float
    startup_rounds: int
    idle_seconds: float
    churn_runs: int


FULL = Plan(
    rounds=3, load_seconds=4, probe_seconds=5, startup_rounds=4, idle_seconds=30, churn_runs=600
)
QUICK = Plan(
    rounds=1, load_seconds=2, probe_seconds=3, startup_rounds=1, idle_seconds=5, churn_runs=100
)


class Bench:
    def __init__(self, workdir: Path, plan: Plan) -> None:
        self.workdir = workdir
        self.plan = plan
        self.payload = workdir / "bare-payload.json"
        self.stub_port = free_port()
        self._spawned = 0

    def _next_dir(self, name: str) -> Path:
        self._spawned += 1
        path = self.workdir / f"{self._spawned:02d}-{name}"
        path.mkdir()
        return path

    def stub(self) -> Child:
        log = self.workdir / "stub.log"
        stub = Child.python(
            "stub", ["-m", "bench.stub", str(self.stub_port), str(STUB_DELAY_MS)], {}, log
        )
        stub.wait_ok(f"http://127.0.0.1:{self.stub_port}/stable.json", timeout=20)
        return stub

    def _ours_env(self, data_dir: Path, port: int) -> dict[str, str]:
        return {
            "VS_DATA_DIR": str(data_dir / "data"),
            "VS_PORT": str(port),
            "VS_HOST": "127.0.0.1",
            "VS_LOG_LEVEL": "WARNING",
            "VS_API_KEY_ADMIN": ADMIN_KEY,
            "VS_VERSIONS_URL": f"http://127.0.0.1:{self.stub_port}",
            "VS_MOD_API_URL": f"http://127.0.0.1:{self.stub_port}/api",
        }

    @contextmanager
    def ours(
        self,
        *,
        bench_app: bool,
        mode: str = "noop",
        jobs: int = BENCH_JOBS,
        prepare: Callable[[Path], None] | None = None,
        env_extra: dict[str, str] | None = None,
    ) -> Iterator[Server]:
        """Ours: the plain service, or (bench_app) the bench factory with `jobs` jobs;
        `prepare` gets the data dir before the process starts; `env_extra` adds variables."""
        port = free_port()
        workdir = self._next_dir("ours")
        env = self._ours_env(workdir, port)
        env.update(env_extra or {})
        if prepare is not None:
            prepare(workdir / "data")
        if bench_app:
            env.update(
                BENCH_JOBS=str(jobs),
                BENCH_JOB_MODE=mode,
                BENCH_STUB_URL=f"http://127.0.0.1:{self.stub_port}/slow",
            )
            args = ["-m", "bench.apps"]
        else:
            args = ["-m", "vintagestory_api"]
        child = Child.python("ours", args, env, workdir / "output.log")
        server = Server(child, port)
        try:
            yield server
        finally:
            child.stop()

    @contextmanager
    def bare(self) -> Iterator[Server]:
        port = free_port()
        workdir = self._next_dir("bare")
        env = {"BENCH_PORT": str(port), "BENCH_PAYLOAD": str(self.payload)}
        child = Child.python("bare", ["-m", "bench.bare"], env, workdir / "output.log")
        server = Server(child, port)
        try:
            yield server
        finally:
            child.stop()


class Server:
    def __init__(self, child: Child, port: int) -> None:
        self.child = child
        self.base = f"http://127.0.0.1:{port}"
        self.startup_seconds: float | None = None

    def ready(self) -> float:
        self.startup_seconds = self.child.wait_ok(self.base + "/healthz")
        return self.startup_seconds

    def get(self, path: str) -> Any:
        response = httpx.get(self.base + path, headers=HEADERS, timeout=10)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, timeout: float = 10) -> Any:
        response = httpx.post(self.base + path, headers=HEADERS, timeout=timeout)
        response.raise_for_status()
        return response.json()

    def load(self, path: str, seconds: float) -> load.LoadResult:
        return load.measure(self.base + path, seconds, CONNECTIONS, HEADERS)


def _bench_jobs(server: Server) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = server.get(JOBS_PATH)["data"]["jobs"]
    return [job for job in jobs if job["id"].startswith("bench_job_")]


def _wait_until(what: str, check: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def throughput_and_memory(bench: Bench) -> list[Row]:
    """HTTP rows, then RSS of both after the load and, for ours, after a long run history."""
    plan = bench.plan
    rows: list[Row] = []
    with bench.ours(bench_app=True) as ours:
        ours.ready()
        _wait_until(
            "every bench job to have run once",
            lambda: (
                all(job["last_run"] for job in _bench_jobs(ours))
                and len(_bench_jobs(ours)) == BENCH_JOBS
            ),
        )
        payloads = {path: ours.get(path) for path in ("/healthz", JOBS_PATH)}
        bench.payload.write_text(json.dumps(payloads))
        sizes = {path: len(json.dumps(body)) for path, body in payloads.items()}
        with bench.bare() as bare:
            bare.ready()
            for server in (ours, bare):
                for path in payloads:
                    server.load(path, 1)  # warm-up, not counted
            for path, target in (("/healthz", 0.75), (JOBS_PATH, 0.5)):
                results: dict[str, list[load.LoadResult]] = {"ours": [], "bare": []}
                for n in range(plan.rounds):
                    pair = [("ours", ours), ("bare", bare)]
                    for name, server in pair if n % 2 == 0 else pair[::-1]:
                        results[name].append(server.load(path, plan.load_seconds))
                rows += _http_rows(path, target, results, sizes[path])
            rss_ours_loaded, rss_bare_loaded = ours.child.rss_mib(), bare.child.rss_mib()
            churn = ours.post(f"/bench/churn?runs={plan.churn_runs}", timeout=300)
            rss_ours_churned = ours.child.rss_mib()
            rows.append(
                Row(
                    "footprint",
                    f"RSS after HTTP load + {churn['runs']:,} recorded runs",
                    "MiB",
                    rss_ours_churned,
                    rss_bare_loaded,
                    BARE,
                    "ratio_max",
                    1.5,
                    rounds=1,
                    detail={
                        "ours_rss_before_churn_mib": round(rss_ours_loaded, 1),
                        "churn": churn,
                    },
                )
            )
    return rows


def _http_rows(
    path: str, target: float, results: dict[str, list[load.LoadResult]], size: int
) -> list[Row]:
    tool = results["ours"][0].tool
    detail: dict[str, object] = {
        "tool": tool,
        "connections": CONNECTIONS,
        "body_bytes": size,
        "per_round": {k: [r.__dict__ for r in v] for k, v in results.items()},
    }
    errors = sum(r.errors for v in results.values() for r in v)
    if errors:
        detail["errors"] = errors
    section = f"HTTP GET {path}"
    rounds = len(results["ours"])
    return [
        Row(section, f"throughput ({tool}, {CONNECTIONS} conns)", "req/s",
            median([r.rps for r in results["ours"]]), median([r.rps for r in results["bare"]]),
            BARE, "ratio_min", target, rounds=rounds, detail=detail),
        Row(section, "latency p50 at saturation", "ms",
            median([r.p50_ms for r in results["ours"]]),
            median([r.p50_ms for r in results["bare"]]),
            BARE, "ratio_max", float("nan"), rounds=rounds),
        Row(section, "latency p99 at saturation", "ms",
            median([r.p99_ms for r in results["ours"]]),
            median([r.p99_ms for r in results["bare"]]),
            BARE, "ratio_max", float("nan"), rounds=rounds),
    ]  # fmt: skip


def _probe(server: Server, seconds: float, every: float = 0.01) -> list[float]:
    """Latencies (ms) of sequential GET /healthz, one every `every` seconds."""
    samples: list[float] = []
    with httpx.Client(timeout=10) as client:
        client.get(server.base + "/healthz")
        end = time.perf_counter() + seconds
        next_at = time.perf_counter()
        while next_at < end:
            start = time.perf_counter()
            client.get(server.base + "/healthz").raise_for_status()
            samples.append((time.perf_counter() - start) * 1000)
            next_at += every
            time.sleep(max(0.0, next_at - time.perf_counter()))
    return samples


def responsiveness(bench: Bench) -> list[Row]:
    """/healthz p99 while 50 jobs do I/O against the slow stub and CPU in threads, vs idle."""
    plan = bench.plan
    idle: dict[str, list[float]] = {"p50": [], "p99": []}
    busy: dict[str, list[float]] = {"p50": [], "p99": []}
    with bench.ours(bench_app=True, mode="load") as ours:
        ours.ready()
        ids = [job["id"] for job in _bench_jobs(ours)]
        current = "idle"  # the load jobs start paused
        for n in range(plan.rounds):
            for state in ("idle", "busy") if n % 2 == 0 else ("busy", "idle"):
                if state != current:
                    action = "resume" if state == "busy" else "pause"
                    for job_id in ids:
                        ours.post(f"{JOBS_PATH}/{job_id}/{action}")
                    current = state
                if state == "idle":
                    _wait_until(
                        "the bench jobs to finish",
                        lambda: ours.get("/healthz")["data"]["scheduler"]["running_jobs"] == 0,
                    )
                time.sleep(1.2)  # a full interval, so every job is in its stride
                samples = _probe(ours, plan.probe_seconds)
                into = busy if state == "busy" else idle
                into["p50"].append(percentile(samples, 50))
                into["p99"].append(percentile(samples, 99))
        runs = sum(job["counts"]["succeeded"] for job in _bench_jobs(ours))
        failed = sum(
            job["counts"]["failed"] + job["counts"]["timed_out"] for job in _bench_jobs(ours)
        )
    detail: dict[str, object] = {
        "jobs": BENCH_JOBS,
        "job": f"GET stub ({STUB_DELAY_MS} ms) then 5 ms CPU in a thread, every 1 s",
        "succeeded_runs": runs,
        "failed_runs": failed,
        "probe": "sequential GET /healthz every 10 ms",
        "per_round": {"idle": idle, "busy": busy},
    }
    section = "responsiveness"
    return [
        Row(section, "/healthz p50, 50 jobs running vs idle", "ms", median(busy["p50"]),
            median(idle["p50"]), "same service idle", "ratio_max", float("nan"),
            rounds=plan.rounds),
        Row(section, "/healthz p99, 50 jobs running vs idle", "ms", median(busy["p99"]),
            median(idle["p99"]), "same service idle", "ratio_max", 2.0, extra_max=50.0,
            rounds=plan.rounds, detail=detail),
    ]  # fmt: skip


PREVIEW_CLIENTS = 20


def _preview_storm(server: Server, stop: threading.Event, counter: list[int]) -> None:
    """One client posting the costliest preview there is, each time in another timezone (so no
    cache helps): 50 leap days, 200 years of DST changes to examine."""
    zones = sorted(zoneinfo.available_timezones())
    with httpx.Client(timeout=30, headers=HEADERS) as client:
        n = 0
        while not stop.is_set():
            zone = zones[(n * 7919 + threading.get_ident()) % len(zones)]
            body = {"cron": "0 0 29 2 *", "count": 50, "timezone": zone}
            client.post(server.base + "/api/v1alpha1/triggers/preview", json=body)
            counter.append(1)
            n += 1


def preview_storm(bench: Bench) -> list[Row]:
    """/healthz p99 while 20 clients post worst-case previews, against the same service idle."""
    plan = bench.plan
    idle: list[float] = []
    busy: list[float] = []
    served = 0
    with bench.ours(bench_app=False) as ours:
        ours.ready()
        for n in range(plan.rounds):
            for state in ("idle", "busy") if n % 2 == 0 else ("busy", "idle"):
                if state == "idle":
                    idle.append(percentile(_probe(ours, plan.probe_seconds), 99))
                    continue
                stop = threading.Event()
                counter: list[int] = []
                clients = [
                    threading.Thread(target=_preview_storm, args=(ours, stop, counter))
                    for _ in range(PREVIEW_CLIENTS)
                ]
                for client in clients:
                    client.start()
                try:
                    time.sleep(0.5)  # every client has a request in flight
                    busy.append(percentile(_probe(ours, plan.probe_seconds), 99))
                finally:
                    stop.set()
                    for client in clients:
                        client.join()
                served += len(counter)
    detail: dict[str, object] = {
        "clients": PREVIEW_CLIENTS,
        "preview": '{"cron": "0 0 29 2 *", "count": 50}, a different timezone each time',
        "previews_answered": served,
        "per_round": {"idle_p99": idle, "busy_p99": busy},
    }
    return [
        Row("responsiveness", f"/healthz p99, {PREVIEW_CLIENTS} worst-case previews vs idle",
            "ms", median(busy), median(idle), "same service idle", "abs_max", 100.0,
            rounds=plan.rounds, detail=detail),
    ]  # fmt: skip


HISTORY_JOBS = 100
HISTORY_PER_JOB = 1000  # the largest job_history_size: 100,000 runs within retention


def _prefill(runs_per_job: int, jobs: int) -> Callable[[Path], None]:
    """Write a run database as weeks of firing would leave it, and a job_history_size that
    keeps it all."""

    def prepare(data_dir: Path) -> None:
        state = data_dir / "state"
        state.mkdir(parents=True, exist_ok=True)
        (state / "api-settings.json").write_text(json.dumps({"job_history_size": 1000}))
        start = datetime.now(UTC) - timedelta(days=30)
        with RunStore.open(state / "runs.db") as store:
            for job in range(jobs):
                for n in range(runs_per_job):
                    began = start + timedelta(seconds=n * 60 + job)
                    store.record(
                        JobRun(
                            run_id=os.urandom(16).hex(),
                            job_id=f"bench_job_{job:03d}",
                            trigger="schedule",
                            outcome="succeeded",
                            scheduled_for=began,
                            started_at=began,
                            finished_at=began + timedelta(milliseconds=5),
                            duration_ms=5,
                            lateness_ms=1,
                            result={"ok": True},
                        )
                    )

    return prepare


def history_depth(bench: Bench) -> list[Row]:
    """GET /jobs and a page of runs with 100,000 stored runs, against the same with 50."""
    plan = bench.plan
    runs_path = f"{JOBS_PATH}/bench_job_000/runs?limit=50"
    paths = (JOBS_PATH, runs_path)
    results: dict[str, dict[str, list[load.LoadResult]]] = {
        path: {"deep": [], "shallow": []} for path in paths
    }
    stored: dict[str, int] = {}
    setups = {
        "deep": _prefill(HISTORY_PER_JOB, HISTORY_JOBS),
        "shallow": _prefill(50, 1),
    }
    for n in range(plan.rounds):
        for name in ("deep", "shallow") if n % 2 == 0 else ("shallow", "deep"):
            data_dirs: list[Path] = []

            def prepare(data_dir: Path, name: str = name, seen: list[Path] = data_dirs) -> None:
                seen.append(data_dir)
                setups[name](data_dir)

            with bench.ours(bench_app=True, jobs=HISTORY_JOBS, prepare=prepare) as ours:
                ours.ready()
                for path in paths:
                    ours.load(path, 1)  # warm-up, not counted
                    results[path][name].append(ours.load(path, plan.load_seconds))
            db = data_dirs[0] / "state" / "runs.db"
            with sqlite3.connect(db) as connection:
                stored[name] = connection.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    rows = []
    for path in paths:
        deep, shallow = results[path]["deep"], results[path]["shallow"]
        rows.append(
            Row(f"HTTP GET {path.split('?')[0]}", "throughput, 100,000 stored runs vs 50",
                "req/s", median([r.rps for r in deep]), median([r.rps for r in shallow]),
                "same service, 50 runs", "ratio_min", 0.9, rounds=plan.rounds,
                detail={"stored_runs_after": stored, "retention_limit":
                        HISTORY_JOBS * HISTORY_PER_JOB})
        )  # fmt: skip
    return rows


def startup_and_idle(bench: Bench) -> list[Row]:
    """Spawn to first 200 and RSS just after, alternating; then idle CPU side by side."""
    plan = bench.plan
    startup: dict[str, list[float]] = {"ours": [], "bare": []}
    rss: dict[str, list[float]] = {"ours": [], "bare": []}
    retries = 0
    for n in range(plan.startup_rounds):
        for name in ("ours", "bare") if n % 2 == 0 else ("bare", "ours"):
            for attempt in range(ATTEMPTS):
                try:
                    with bench.ours(bench_app=False) if name == "ours" else bench.bare() as server:
                        seconds = server.ready()
                        time.sleep(1.0)  # let the startup jobs (version check) finish
                        mib = server.child.rss_mib()
                    startup[name].append(seconds)
                    rss[name].append(mib)
                    break
                except (RuntimeError, httpx.HTTPError):
                    if attempt == ATTEMPTS - 1:
                        raise
                    retries += 1
    for attempt in range(ATTEMPTS):
        try:
            cpu, jobs = _idle_cpu(bench)
            break
        except (RuntimeError, httpx.HTTPError):
            if attempt == ATTEMPTS - 1:
                raise
            retries += 1
    return [
        Row("startup", "spawn to first 200 on /healthz", "ms", median(startup["ours"]) * 1000,
            median(startup["bare"]) * 1000, BARE, "ratio_max", 2.0,
            rounds=plan.startup_rounds, detail={"per_round_s": startup}),
        Row("footprint", "RSS 1 s after startup", "MiB", median(rss["ours"]),
            median(rss["bare"]), BARE, "ratio_max", 1.5, rounds=plan.startup_rounds,
            detail={"per_round_mib": rss}),
        Row("footprint", f"idle CPU over {plan.idle_seconds:g} s (default jobs)", "%",
            cpu["ours"], cpu["bare"], BARE, "abs_max", 1.0, rounds=1,
            detail={"jobs_registered": jobs, "side_by_side": True, "retries": retries}),
    ]  # fmt: skip


def _idle_cpu(bench: Bench) -> tuple[dict[str, float], list[str]]:
    """CPU % of ours (default jobs, pointed at the stub) and bare, idling side by side."""
    with bench.ours(bench_app=False) as ours, bench.bare() as bare:
        ours.ready()
        bare.ready()
        time.sleep(2.0)
        before = {"ours": ours.child.cpu_seconds(), "bare": bare.child.cpu_seconds()}
        started = time.perf_counter()
        time.sleep(bench.plan.idle_seconds)
        wall = time.perf_counter() - started
        cpu = {
            "ours": (ours.child.cpu_seconds() - before["ours"]) / wall * 100,
            "bare": (bare.child.cpu_seconds() - before["bare"]) / wall * 100,
        }
        jobs = [job["id"] for job in ours.get(JOBS_PATH)["data"]["jobs"]]
    return cpu, jobs
