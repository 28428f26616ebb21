"""Run history: a bounded list of recent runs and outcome counters per job."""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic_core import to_jsonable_python

from .schemas import JobRun, RunCounts, RunError, RunOutcome

logger = structlog.get_logger()

MAX_RESULT_BYTES = 4096
MAX_ERROR_MESSAGE_CHARS = 500

RunListener = Callable[[JobRun], None]

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
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._runs: dict[str, deque[JobRun]] = {}
        self._counts: dict[str, dict[str, int]] = {}
        # The RunCounts model of each job's counts, built when first read after they changed:
        # GET /jobs reads every job's counts on every request, most of them unchanged since.
        self._count_models: dict[str, RunCounts] = {}
        self._listeners: list[RunListener] = []
        self._version = 0

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

    def add_listener(self, listener: RunListener) -> None:
        self._listeners.append(listener)

    def record(self, run: JobRun) -> None:
        """Add a new run (a running one, or one that never started) as the job's newest."""
        runs = self._runs.get(run.job_id)
        if runs is None:
            runs = self._runs[run.job_id] = deque(maxlen=self._size)
        runs.appendleft(run)
        self._version += 1
        if run.outcome != "running":
            self._finished(run)

    def finish(self, run: JobRun, outcome: RunOutcome, finished_at: datetime) -> None:
        """Complete a running run in place; it may already have left the bounded history."""
        run.outcome = outcome
        run.finished_at = finished_at
        if run.started_at is not None:
            run.duration_ms = elapsed_ms(run.started_at, finished_at)
        self._version += 1
        self._finished(run)

    def _finished(self, run: JobRun) -> None:
        if run.outcome != "running":
            counts = self._counts.setdefault(run.job_id, {})
            counts[run.outcome] = counts.get(run.outcome, 0) + 1
            self._count_models.pop(run.job_id, None)
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
        chosen = list(runs)[:limit] if limit is not None else list(runs)
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
        return job_id in self._runs
