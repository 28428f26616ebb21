"""Prometheus exposition: job, scheduler and game server series, HTTP metrics, the process
collector.

Each app gets its own `CollectorRegistry`; the global default registry would make a second app
in the same process (every test builds one) fail with duplicated time series.

Per-job series label the job `job_id`, not `job`: Prometheus gives every series of a scrape job
a `job` label of its own, and a clash would either rename ours or, with `honor_labels`, drop the
scrape job's name from every series.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.registry import Collector

from vintagestory_api.gameserver.states import ServerState

OUTCOMES = ("succeeded", "failed", "timed_out", "skipped", "missed", "cancelled", "interrupted")
# Outcomes that mean the job's own work went wrong; skips and misses are the scheduler's doing
# and cancellation or interruption is the API stopping, so they neither count as a failure nor
# break a failing streak.
FAILURE_OUTCOMES = frozenset({"failed", "timed_out"})

DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
LATENESS_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

# Prometheus 2.x understands 0.0.4; prometheus_client's newer default needs Prometheus 3.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


class RunLike(Protocol):
    """The parts of a finished job run the metrics read."""

    @property
    def job_id(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def trigger(self) -> str: ...
    @property
    def duration_ms(self) -> float | None: ...
    @property
    def lateness_ms(self) -> float | None: ...
    @property
    def finished_at(self) -> datetime | None: ...


class JobLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def paused(self) -> bool: ...
    @property
    def running(self) -> bool: ...
    @property
    def next_run_time(self) -> datetime | None: ...
    @property
    def interval_seconds(self) -> int | None: ...


class SchedulerLike(Protocol):
    """What the exposition needs from `SchedulerService`."""

    @property
    def running(self) -> bool: ...
    def list_jobs(self) -> Sequence[JobLike]: ...
    def add_run_listener(self, listener: Callable[[RunLike], None]) -> None: ...


class GameServerLike(Protocol):
    """What the exposition needs from `GameServerService`."""

    @property
    def state(self) -> ServerState: ...
    @property
    def players_online(self) -> int | None: ...
    @property
    def should_run(self) -> bool: ...
    @property
    def crash_loop(self) -> bool: ...
    @property
    def restarts(self) -> Mapping[str, int]: ...
    @property
    def crash_count(self) -> int: ...
    @property
    def ready_seconds(self) -> float | None: ...


def _timestamp(moment: datetime | None) -> float:
    # NaN, not a missing series: every job shows every series, and NaN makes comparisons such
    # as `time() - last_success > x` false instead of firing for a job that has not run yet.
    return moment.timestamp() if moment is not None else math.nan


class JobCollector(Collector):
    """Job and scheduler series, read from the scheduler at scrape time plus what runs told us."""

    def __init__(self) -> None:
        self._scheduler: SchedulerLike | None = None
        self._lock = threading.Lock()
        self._runs: dict[tuple[str, str], int] = {}
        self._last_success: dict[str, datetime] = {}
        self._consecutive_failures: dict[str, int] = {}
        # Not registered on the registry themselves: collect() yields them after making sure
        # every registered job has its (empty) series.
        self._duration = Histogram(
            "vsapi_job_run_duration_seconds",
            "How long job runs took",
            ["job_id"],
            registry=None,
            buckets=DURATION_BUCKETS,
        )
        self._lateness = Histogram(
            "vsapi_job_lateness_seconds",
            "How late job runs started after their scheduled time",
            ["job_id"],
            registry=None,
            buckets=LATENESS_BUCKETS,
        )

    def watch(self, scheduler: SchedulerLike) -> None:
        self._scheduler = scheduler
        scheduler.add_run_listener(self.observe_run)

    def observe_run(self, run: RunLike) -> None:
        """Count one finished run; registered as the scheduler's run listener."""
        job, outcome = run.job_id, str(run.outcome)
        with self._lock:
            self._runs[(job, outcome)] = self._runs.get((job, outcome), 0) + 1
            if outcome == "succeeded":
                self._consecutive_failures[job] = 0
                if run.finished_at is not None:
                    known = self._last_success.get(job)
                    if known is None or run.finished_at > known:
                        self._last_success[job] = run.finished_at
            elif outcome in FAILURE_OUTCOMES:
                self._consecutive_failures[job] = self._consecutive_failures.get(job, 0) + 1
        if run.duration_ms is not None:
            self._duration.labels(job_id=job).observe(run.duration_ms / 1000)
        # A catch-up run is as late as the API was down; that is not dispatch lateness.
        if run.lateness_ms is not None and run.trigger == "schedule":
            self._lateness.labels(job_id=job).observe(max(run.lateness_ms, 0.0) / 1000)

    def collect(self) -> Iterable[Metric]:
        scheduler = self._scheduler
        jobs = list(scheduler.list_jobs()) if scheduler is not None else []
        up = GaugeMetricFamily("vsapi_scheduler_up", "1 when the scheduler is running")
        up.add_metric([], 1.0 if scheduler is not None and scheduler.running else 0.0)
        yield up
        count = GaugeMetricFamily("vsapi_scheduler_jobs", "Jobs registered with the scheduler")
        count.add_metric([], float(len(jobs)))
        yield count

        running = GaugeMetricFamily(
            "vsapi_job_running", "1 while a run is in progress", labels=["job_id"]
        )
        paused = GaugeMetricFamily(
            "vsapi_job_paused", "1 when the job is paused", labels=["job_id"]
        )
        next_run = GaugeMetricFamily(
            "vsapi_job_next_run_timestamp_seconds",
            "Unix time of the next scheduled run; NaN when paused",
            labels=["job_id"],
        )
        last_success = GaugeMetricFamily(
            "vsapi_job_last_success_timestamp_seconds",
            "Unix time the last successful run finished; NaN when none since the API started",
            labels=["job_id"],
        )
        interval = GaugeMetricFamily(
            "vsapi_job_interval_seconds", "Seconds between runs of interval jobs", labels=["job_id"]
        )
        streak = GaugeMetricFamily(
            "vsapi_job_consecutive_failures",
            "Failed or timed-out runs since the last success",
            labels=["job_id"],
        )
        runs = CounterMetricFamily(
            "vsapi_job_runs", "Finished job runs by outcome", labels=["job_id", "outcome"]
        )
        with self._lock:
            counts = dict(self._runs)
            successes = dict(self._last_success)
            failures = dict(self._consecutive_failures)
        for job in jobs:
            running.add_metric([job.id], 1.0 if job.running else 0.0)
            paused.add_metric([job.id], 1.0 if job.paused else 0.0)
            next_run.add_metric([job.id], _timestamp(job.next_run_time))
            last_success.add_metric([job.id], _timestamp(successes.get(job.id)))
            if job.interval_seconds is not None:
                interval.add_metric([job.id], float(job.interval_seconds))
            streak.add_metric([job.id], float(failures.get(job.id, 0)))
            # Zero series for outcomes not seen yet, so increase() and rate() work from the
            # first occurrence instead of missing it.
            for outcome in OUTCOMES:
                counts.setdefault((job.id, outcome), 0)
            self._duration.labels(job_id=job.id)
            self._lateness.labels(job_id=job.id)
        # Removed jobs keep their counters: a counter that vanishes mid-life reads as a reset.
        for (job_id, outcome), value in sorted(counts.items()):
            runs.add_metric([job_id, outcome], float(value))
        yield from (running, paused, next_run, last_success, interval, streak, runs)
        yield from self._duration.collect()
        yield from self._lateness.collect()


class GameServerCollector(Collector):
    """The supervised game server's series, read from the supervisor at scrape time."""

    def __init__(self, game_server: GameServerLike) -> None:
        self._game_server = game_server

    def collect(self) -> Iterable[Metric]:
        server = self._game_server
        state = server.state
        up = GaugeMetricFamily(
            "vsapi_gameserver_up", "1 when the game server is running (past its ready line)"
        )
        up.add_metric([], 1.0 if state is ServerState.RUNNING else 0.0)
        # Every state, 1 for the current one: `vsapi_gameserver_state{state="crashed"} == 1`
        # works without knowing what the other states are called.
        states = GaugeMetricFamily(
            "vsapi_gameserver_state", "1 for the game server's current state", labels=["state"]
        )
        for each in ServerState:
            states.add_metric([each.value], 1.0 if each is state else 0.0)
        should_run = GaugeMetricFamily(
            "vsapi_gameserver_should_run",
            "1 when the last start, restart or stop an admin (or auto-start) asked for was a "
            "start; crashes do not change it",
        )
        should_run.add_metric([], 1.0 if server.should_run else 0.0)
        crash_loop = GaugeMetricFamily(
            "vsapi_gameserver_crash_loop",
            "1 after repeated crashes, while automatic restarts have stopped",
        )
        crash_loop.add_metric([], 1.0 if server.crash_loop else 0.0)
        players = GaugeMetricFamily(
            "vsapi_gameserver_players_online", "Players online; 0 when it is not running"
        )
        players.add_metric([], float(server.players_online or 0))
        ready = GaugeMetricFamily(
            "vsapi_gameserver_ready_seconds",
            "Seconds from spawn to the ready line of the last start; NaN before the first",
        )
        seconds = server.ready_seconds
        ready.add_metric([], seconds if seconds is not None else math.nan)
        restarts = CounterMetricFamily(
            "vsapi_gameserver_restarts",
            "Restarts by reason: crash (automatic) or requested",
            labels=["reason"],
        )
        for reason, count in sorted(server.restarts.items()):
            restarts.add_metric([reason], float(count))
        crashes = CounterMetricFamily(
            "vsapi_gameserver_crashes", "Exits of the game server that nobody asked for"
        )
        crashes.add_metric([], float(server.crash_count))
        yield from (up, states, should_run, crash_loop, players, ready, restarts, crashes)


class PrometheusMetrics:
    """The per-app registry and everything on it."""

    def __init__(self, *, process_collector: bool = True) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.jobs = JobCollector()
        self.registry.register(self.jobs)
        if process_collector:
            ProcessCollector(registry=self.registry)
        self.http_requests = Counter(
            "vsapi_http_requests",
            "HTTP requests by route template, method and status class",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.http_duration = Histogram(
            "vsapi_http_request_duration_seconds",
            "HTTP request duration by route template and method",
            ["route", "method"],
            registry=self.registry,
            buckets=HTTP_BUCKETS,
        )
        # The labelled children per (route, method, status class): `labels()` validates and
        # joins its arguments on every call, twice per request. Few keys: routes are templates
        # and methods a fixed set.
        self._http_children: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}

    def watch_scheduler(self, scheduler: SchedulerLike) -> None:
        """Read job series from `scheduler` and count its runs from now on."""
        self.jobs.watch(scheduler)

    def watch_game_server(self, game_server: GameServerLike) -> None:
        """Expose the supervised game server's state and counters."""
        self.registry.register(GameServerCollector(game_server))

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, f"{status // 100}xx")
        children = self._http_children.get(key)
        if children is None:
            children = self._http_children[key] = (
                self.http_requests.labels(route=route, method=method, status=key[2]),
                self.http_duration.labels(route=route, method=method),
            )
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
