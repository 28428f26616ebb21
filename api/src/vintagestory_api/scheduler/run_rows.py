"""How a job run is stored: the outcomes a stored run can have, the encoding of its timestamps
(integer microseconds since the epoch, plus the UTC offset a fire time was given in), the
snapshot of a `JobRun` that the write queue carries, and the conversion of a `runs` row back
into a `JobRun`. Pure functions, no database: the run store's writer, its reads and its opening
all share them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, Final, get_args, overload

import structlog
from pydantic_core import from_json, to_json

from .schemas import JobRun, RunError, RunOutcome, RunTrigger

logger = structlog.get_logger()

Clock = Callable[[], datetime]

# The outcomes a stored run can have: the API's own, "interrupted" included (a run the API was
# still running when it stopped).
StoredOutcome = RunOutcome
STORED_OUTCOMES: Final[frozenset[str]] = frozenset(get_args(StoredOutcome))
INTERRUPTED: Final = "interrupted"
INTERRUPTED_REASON: Final = "the API stopped while it ran"

_MODEL_OUTCOMES: Final[frozenset[str]] = frozenset(get_args(RunOutcome))
_TRIGGERS: Final[frozenset[str]] = frozenset(get_args(RunTrigger))
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US: Final = timedelta(microseconds=1)


@overload
def us(moment: datetime) -> int: ...
@overload
def us(moment: None) -> None: ...
@overload
def us(moment: datetime | None) -> int | None: ...
def us(moment: datetime | None) -> int | None:
    """Microseconds since the epoch; a naive datetime is taken as UTC."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _ONE_US


def _offset(moment: datetime | None) -> int | None:
    offset = moment.utcoffset() if moment is not None else None
    # Null for UTC, the common case, so that a UTC time needs no conversion when read.
    return round(offset.total_seconds()) if offset else None


@lru_cache(maxsize=64)
def _zone(offset_seconds: int) -> timezone:
    return timezone(timedelta(seconds=offset_seconds))


def _moment(us: int | None, offset_seconds: int | None = None) -> datetime | None:
    if us is None:
        return None
    # Exact for times before the year 2100: the float quotient is then within 0.25 us of the
    # true one, and fromtimestamp rounds to the nearest microsecond. A third faster than adding a
    # timedelta to the epoch, on the path that loads the history at startup.
    moment = datetime.fromtimestamp(us / 1e6, UTC)
    return moment.astimezone(_zone(offset_seconds)) if offset_seconds else moment


def _text(value: str | None) -> str | None:
    # Exception texts can carry lone surrogates (undecodable file names), which SQLite's UTF-8
    # cannot hold; they become "?" rather than costing the run.
    if value is None or value.isascii():
        return value
    return value.encode("utf-8", "replace").decode("utf-8")


# What the caller hands over: a ticket number, then the JobRun's fields as they were then.
Change = tuple[Any, ...]


def change_of(ticket: int, run: JobRun) -> Change:
    """The run as it is now, for the write queue: the runner keeps assigning the fields of a
    running `JobRun`, so the writer must not read the object later."""
    return (
        ticket,
        run.run_id,
        run.job_id,
        run.trigger,
        run.outcome,
        run.scheduled_for,
        run.started_at,
        run.finished_at,
        run.duration_ms,
        run.lateness_ms,
        run.reason,
        # Never changed in place by the runner, only replaced: shared safely.
        run.error,
        run.result,
    )


def db_row(change: Change) -> tuple[Any, ...]:
    """A queued change as the `runs` columns after `seq`."""
    (
        _ticket,
        run_id,
        job_id,
        trigger,
        outcome,
        scheduled_for,
        started_at,
        finished_at,
        duration_ms,
        lateness_ms,
        reason,
        error,
        result,
    ) = change
    # Jobs return JSON-able results (see run_result); anything else is kept as its repr.
    result_json = to_json(result, fallback=repr).decode() if result is not None else None
    return (
        run_id,
        job_id,
        trigger,
        outcome,
        us(scheduled_for),
        _offset(scheduled_for),
        us(started_at),
        us(finished_at),
        duration_ms,
        lateness_ms,
        _text(reason),
        _text(error.type) if error is not None else None,
        _text(error.message) if error is not None else None,
        result_json,
    )


def run_from_row(row: tuple[Any, ...]) -> JobRun | None:
    """A stored row as a JobRun; a row that is not a valid run is skipped with a warning."""
    (
        run_id,
        job_id,
        trigger,
        outcome,
        scheduled_for,
        scheduled_offset,
        started_at,
        finished_at,
        duration_ms,
        lateness_ms,
        reason,
        error_type,
        error_message,
        result_json,
    ) = row
    try:
        fields: dict[str, Any] = {
            "run_id": run_id,
            "job_id": job_id,
            "trigger": trigger,
            "outcome": outcome,
            "scheduled_for": _moment(scheduled_for, scheduled_offset),
            "started_at": _moment(started_at),
            "finished_at": _moment(finished_at),
            "duration_ms": duration_ms,
            "lateness_ms": lateness_ms,
            "reason": reason,
            "error": (
                RunError(type=error_type, message=error_message or "")
                if error_type is not None
                else None
            ),
            "result": from_json(result_json) if result_json is not None else None,
        }
        if outcome in _MODEL_OUTCOMES:
            return JobRun.model_validate(fields)
        # An outcome the model does not know yet ("interrupted"): the other fields are validated
        # with a stand-in outcome, then the run is built with the real one.
        if outcome not in STORED_OUTCOMES or trigger not in _TRIGGERS:
            raise ValueError(f"unknown outcome {outcome!r} or trigger {trigger!r}")
        checked = JobRun.model_validate({**fields, "outcome": "failed"})
        return JobRun.model_construct(**{**dict(checked), "outcome": outcome})
    except (TypeError, ValueError, OverflowError, OSError) as exc:
        logger.warning("run_store_row_skipped", run_id=run_id, reason=str(exc)[:300])
        return None


def runs_from_rows(rows: list[Any]) -> list[JobRun]:
    return [run for row in rows if (run := run_from_row(row)) is not None]
