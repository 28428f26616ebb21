"""Run history: a bounded list of recent runs and outcome counters per job."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from pydantic_core import to_jsonable_python

from .errors import RunNotFound
from .run_store import RunStore, UnknownRun
from .schemas import JobRun, RunCounts, RunError, RunOutcome

logger = structlog.get_logger()

MAX_RESULT_BYTES = 4096
MAX_ERROR_MESSAGE_CHARS = 500

RunListener = Callable[[JobRun], None]

# Runs older than this are deleted from the run database (job_history_max_age_days).
DEFAULT_MAX_AGE = timedelta(days=90)
# Prune the run database after this many finished runs (and at startup and on resize).
PRUNE_EVERY = 1000

_NO_RUNS = RunCounts()


def new_run_id() -> str:
    """128 random bits as 32 hex digits, the shape of a `uuid4().hex` at a fifth of its cost
    (one is made per run, on the dispatch path)."""
    return os.urandom(16).hex()


def utc_now() -> datetime:
    return datetime.now(UTC)


def elapsed_ms(start: datetime, end: datetime) -> int:
    return round((end - start).total_seconds() * 1000)


def run_error(exc: BaseException) -> RunError:
    """The type and text of an exception; the traceback (and its frames) is not kept."""
    message = str(exc) or repr(exc)
    if len(message) > MAX_ERROR_MESSAGE_CHARS:
        message = message[: MAX_ERROR_MESSAGE_CHARS - 1] + "…"
    return RunError(type=type(exc).__name__, message=message)


def run_result(value: object) -> dict[str, Any] | None:
    """A job's return value as a small JSON object; oversized results are replaced by a marker."""
    if value is None:
        return None
    payload = dict(value) if isinstance(value, Mapping) else {"value": value}
    jsonable = to_jsonable_python(payload, fallback=repr)
    size = len(json.dumps(jsonable, ensure_ascii=False).encode())
    if size > MAX_RESULT_BYTES:
        return {"truncated": True, "size_bytes": size}
    result: dict[str, Any] = jsonable
    return result


def _snapshot(run: JobRun) -> JobRun:
    """What a reader may keep: a finished run as is, a copy of a running one.

    The runner changes a run only while it runs, and only by assigning fields (never by changing
    a field's value in place); once finished, a run is never changed again. So a finished run is
    shared rather than copied, and a shallow copy freezes a running one. Readers must not change
    what they get.
    """
    return run.model_copy() if run.outcome == "running" else run


class RunHistory:
    """The newest `size` runs of each job, plus counts of every finished outcome.

    History outlives a job's removal so that a run still in flight when its job is deleted is
    kept, and a job removed and added again (a setting toggled off and on) keeps its record.

    With a `RunStore`, every run is also written behind to the run database, and the history
    starts from what it holds, so runs, counts and last runs survive a restart. The newest runs
    stay in memory: the job list and the first page of runs never touch the disk; deeper or
    filtered pages are read from the database (`page`).
    """

    def __init__(
        self,
        size: int,
        store: RunStore | None = None,
        *,
        max_age: timedelta = DEFAULT_MAX_AGE,
    ) -> None:
        self._size = size
        self._store = store
        self._max_age = max_age
        self._runs: dict[str, deque[JobRun]] = {}
        self._counts: dict[str, dict[str, int]] = {}
        # The RunCounts model of each job's counts, built when first read after they changed:
        # GET /jobs reads every job's counts on every request, most of them unchanged since.
        self._count_models: dict[str, RunCounts] = {}
        self._listeners: list[RunListener] = []
        self._version = 0
        self._finished_since_prune = 0
        self._known: set[str] = set()
        if store is not None:
            for job_id, runs in store.load_recent(size).items():
                self._runs[job_id] = deque(runs, maxlen=size)
            self._counts = {job: dict(counts) for job, counts in store.counts().items()}
            self._known = store.job_ids()
            store.prune(size, max_age)

    @property
    def store(self) -> RunStore | None:
        return self._store

    def set_max_age(self, max_age: timedelta) -> None:
        """The age limit of stored runs; pruning runs in the run database's writer."""
        self._max_age = max_age
        if self._store is not None:
            self._store.prune(self._size, max_age)

    @property
    def size(self) -> int:
        return self._size

    @property
    def version(self) -> int:
        """Grows on every change a reader could see (a run added or finished, a resize)."""
        return self._version

    def resize(self, size: int) -> None:
        if size < 1:
            raise ValueError("history size must be at least 1")
        self._size = size
        self._version += 1
        for job_id, runs in self._runs.items():
            self._runs[job_id] = deque(runs, maxlen=size)
        if self._store is not None:
            self._store.prune(size, self._max_age)

    def add_listener(self, listener: RunListener) -> None:
        self._listeners.append(listener)

    def record(self, run: JobRun) -> None:
        """Add a new run (a running one, or one that never started) as the job's newest."""
        runs = self._runs.get(run.job_id)
        if runs is None:
            runs = self._runs[run.job_id] = deque(maxlen=self._size)
        runs.appendleft(run)
        self._version += 1
        if self._store is not None:
            self._store.record(run)
        if run.outcome != "running":
            self._finished(run)

    def finish(self, run: JobRun, outcome: RunOutcome, finished_at: datetime) -> None:
        """Complete a running run in place; it may already have left the bounded history."""
        run.outcome = outcome
        run.finished_at = finished_at
        if run.started_at is not None:
            run.duration_ms = elapsed_ms(run.started_at, finished_at)
        self._version += 1
        if self._store is not None:
            self._store.finish(run)
        self._finished(run)

    def _finished(self, run: JobRun) -> None:
        if run.outcome != "running":
            counts = self._counts.setdefault(run.job_id, {})
            counts[run.outcome] = counts.get(run.outcome, 0) + 1
            self._count_models.pop(run.job_id, None)
            self._finished_since_prune += 1
            if self._store is not None and self._finished_since_prune >= PRUNE_EVERY:
                # Runs are added at the front; now and then the oldest beyond the limits go.
                self._finished_since_prune = 0
                self._store.prune(self._size, self._max_age)
        for listener in self._listeners:
            try:
                # Finished, so never changed again: every listener gets the run itself.
                listener(run)
            except Exception:
                # A broken metrics hook must not break the scheduler or lose the run.
                logger.exception("run_listener_failed", job_id=run.job_id, run_id=run.run_id)

    def runs(self, job_id: str, limit: int | None = None) -> list[JobRun]:
        """The job's newest runs, newest first (see `_snapshot`)."""
        runs = self._runs.get(job_id, ())
        # islice: a page of 50 from a history of 1,000 copies 50, not 1,000.
        chosen = list(itertools.islice(runs, limit)) if limit is not None else list(runs)
        return [_snapshot(run) for run in chosen]

    def last(self, job_id: str) -> JobRun | None:
        runs = self._runs.get(job_id)
        return _snapshot(runs[0]) if runs else None

    def counts(self, job_id: str) -> RunCounts:
        """The job's counts; a frozen model, shared between readers."""
        model = self._count_models.get(job_id)
        if model is None:
            counts = self._counts.get(job_id)
            if counts is None:
                return _NO_RUNS
            model = self._count_models[job_id] = RunCounts(**counts)
        return model

    def knows(self, job_id: str) -> bool:
        return job_id in self._runs or job_id in self._known

    def last_scheduled(self, job_id: str) -> JobRun | None:
        """The newest run the job's schedule started (not a manual one), from memory."""
        for run in self._runs.get(job_id, ()):
            if run.trigger != "manual" and run.scheduled_for is not None:
                return run
        return None

    def can_answer_from_memory(
        self, job_id: str, limit: int, before: str | datetime | None, outcome: str | None
    ) -> bool:
        """Whether `runs(job_id, limit)` answers a page exactly, without the database."""
        if before is not None or outcome is not None:
            return self._store is None or not self._store.persistent
        held = len(self._runs.get(job_id, ()))
        return limit <= held or held < self._size or self._store is None

    def page(
        self,
        job_id: str,
        *,
        limit: int,
        before: str | datetime | None = None,
        outcome: str | None = None,
    ) -> list[JobRun]:
        """A page of runs, newest first, from the run database (blocking: run in a thread),
        or from memory when there is no database."""
        if self._store is not None and self._store.persistent:
            return self._store.page(job_id, limit=limit, before=before, outcome=outcome)
        runs = self.runs(job_id)
        if isinstance(before, str):
            ids = [run.run_id for run in runs]
            if before not in ids:
                raise UnknownRun(job_id, before)
            runs = runs[ids.index(before) + 1 :]
        elif isinstance(before, datetime):
            runs = [run for run in runs if _recorded_at(run) < before]
        if outcome is not None:
            runs = [run for run in runs if run.outcome == outcome]
        return runs[:limit]


async def page_runs(
    history: RunHistory,
    job_id: str,
    *,
    limit: int,
    before: str | datetime | None,
    outcome: str | None,
) -> list[JobRun]:
    if history.can_answer_from_memory(job_id, limit, before, outcome):
        if before is None and outcome is None:
            return history.runs(job_id, limit)
        return history.page(job_id, limit=limit, before=before, outcome=outcome)
    try:
        return await asyncio.to_thread(
            history.page, job_id, limit=limit, before=before, outcome=outcome
        )
    except UnknownRun as exc:
        raise RunNotFound(job_id, str(before)) from exc


def interval_phase(
    history: RunHistory, job_id: str, seconds: int, now: datetime
) -> tuple[datetime | None, datetime | None]:
    """(first fire, catch-up due time) of an interval job from its last scheduled run.

    No scheduled run known: (None, None), the job starts one interval from now as always. Its
    next fire (last + interval) still ahead: that, so a restart keeps the phase. Already
    passed while the API was down: (now, the missed due time), one run right away.
    """
    last = history.last_scheduled(job_id)
    if last is None or last.scheduled_for is None:
        return None, None
    due = last.scheduled_for + timedelta(seconds=seconds)
    if due > now:
        return due, None
    return now, due


def _recorded_at(run: JobRun) -> datetime:
    moment = run.started_at or run.finished_at or run.scheduled_for
    return moment if moment is not None else datetime.min.replace(tzinfo=UTC)
