"""Run history: a bounded list of recent runs and outcome counters per job."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic_core import to_jsonable_python

from vintagestory_api.models.jobs import JobRun, RunCounts, RunError, RunOutcome

logger = structlog.get_logger()

MAX_RESULT_BYTES = 4096
MAX_ERROR_MESSAGE_CHARS = 500

RunListener = Callable[[JobRun], None]


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


class RunHistory:
    """The newest `size` runs of each job, plus counts of every finished outcome.

    History outlives a job's removal so that a run still in flight when its job is deleted is
    kept, and a job removed and added again (a setting toggled off and on) keeps its record.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._runs: dict[str, deque[JobRun]] = {}
        self._counts: dict[str, RunCounts] = {}
        self._listeners: list[RunListener] = []

    @property
    def size(self) -> int:
        return self._size

    def resize(self, size: int) -> None:
        if size < 1:
            raise ValueError("history size must be at least 1")
        self._size = size
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
        if run.outcome != "running":
            self._finished(run)

    def finish(self, run: JobRun, outcome: RunOutcome, finished_at: datetime) -> None:
        """Complete a running run in place; it may already have left the bounded history."""
        run.outcome = outcome
        run.finished_at = finished_at
        if run.started_at is not None:
            run.duration_ms = elapsed_ms(run.started_at, finished_at)
        self._finished(run)

    def _finished(self, run: JobRun) -> None:
        counts = self._counts.setdefault(run.job_id, RunCounts())
        if run.outcome != "running":
            setattr(counts, run.outcome, getattr(counts, run.outcome) + 1)
        for listener in self._listeners:
            try:
                listener(run.model_copy(deep=True))
            except Exception:
                # A broken metrics hook must not break the scheduler or lose the run.
                logger.exception("run_listener_failed", job_id=run.job_id, run_id=run.run_id)

    def runs(self, job_id: str, limit: int | None = None) -> list[JobRun]:
        """Copies of the job's newest runs, newest first."""
        runs = self._runs.get(job_id, ())
        chosen = list(runs)[:limit] if limit is not None else list(runs)
        return [run.model_copy(deep=True) for run in chosen]

    def last(self, job_id: str) -> JobRun | None:
        runs = self._runs.get(job_id)
        return runs[0].model_copy(deep=True) if runs else None

    def counts(self, job_id: str) -> RunCounts:
        return self._counts.get(job_id, RunCounts()).model_copy()

    def knows(self, job_id: str) -> bool:
        return job_id in self._runs
