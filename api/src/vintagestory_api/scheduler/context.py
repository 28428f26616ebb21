"""Which run the current code runs in: a job function asks, to tell a schedule from a run-now."""

from __future__ import annotations

from contextvars import ContextVar

from .schemas import JobRun

_current_run: ContextVar[JobRun | None] = ContextVar("current_run", default=None)


def current_run() -> JobRun | None:
    """The run whose job function is executing in this task, or None outside any run."""
    return _current_run.get()


def bind_run(run: JobRun) -> object:
    """Set by the runner around a job call; returns the token to `unbind_run` with."""
    return _current_run.set(run)


def unbind_run(token: object) -> None:
    _current_run.reset(token)  # type: ignore[arg-type]  # a Token made by bind_run
