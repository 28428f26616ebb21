"""The run store's reads: the queries behind `RunStore.page`, `load_recent`, `counts`,
`job_ids`, `knows` and `query_plan`, each a function of the reader connection, and the errors a
read raises. Paging is answered from the `(job_id, seq)` and `(job_id, outcome, seq)` indexes;
`query_plan` is there to show that it still is.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any, Final

from .run_db import JOB_IDS
from .run_rows import runs_from_rows, us
from .schemas import JobRun

_MAX_SEQ: Final = 2**63 - 1

_PAGE: Final = (
    "SELECT run_id, job_id, trigger, outcome, scheduled_for, scheduled_offset, started_at, "
    "finished_at, duration_ms, lateness_ms, reason, error_type, error_message, result_json "
    "FROM runs WHERE job_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?"
)
_PAGE_OUTCOME: Final = (
    "SELECT run_id, job_id, trigger, outcome, scheduled_for, scheduled_offset, started_at, "
    "finished_at, duration_ms, lateness_ms, reason, error_type, error_message, result_json "
    "FROM runs WHERE job_id = ? AND outcome = ? AND seq < ? ORDER BY seq DESC LIMIT ?"
)
_SEQ_OF_RUN: Final = "SELECT seq FROM runs WHERE run_id = ? AND job_id = ?"
_ALL_JOB_IDS: Final = "SELECT DISTINCT job_id FROM runs UNION SELECT job_id FROM counts"
_KNOWS: Final = (
    "SELECT EXISTS (SELECT 1 FROM runs WHERE job_id = ?) "
    "OR EXISTS (SELECT 1 FROM counts WHERE job_id = ?)"
)
_COUNTS: Final = "SELECT job_id, outcome, n FROM counts ORDER BY job_id, outcome"


class RunStoreError(Exception):
    """The database could not be read."""


class RunStoreClosed(RunStoreError):
    """A read after `close()`."""


class UnknownRun(LookupError):
    """`page(before=<run id>)` with a run id this job has no stored run of (or no longer has:
    pruning removes the oldest runs first, so a caller paging backwards may treat it as the
    end)."""

    def __init__(self, job_id: str, run_id: str) -> None:
        super().__init__(f"job '{job_id}' has no stored run '{run_id}'")
        self.job_id = job_id
        self.run_id = run_id


def read_page(
    db: sqlite3.Connection,
    job_id: str,
    limit: int,
    before: str | datetime | None,
    outcome: str | None,
) -> list[JobRun]:
    bound = _MAX_SEQ
    if isinstance(before, datetime):
        bound = us(before)
    elif before is not None:
        row = db.execute(_SEQ_OF_RUN, (before, job_id)).fetchone()
        if row is None:
            raise UnknownRun(job_id, before)
        bound = row[0]
    if outcome is None:
        return runs_from_rows(db.execute(_PAGE, (job_id, bound, limit)).fetchall())
    return runs_from_rows(db.execute(_PAGE_OUTCOME, (job_id, outcome, bound, limit)).fetchall())


def read_recent(db: sqlite3.Connection, per_job: int) -> dict[str, list[JobRun]]:
    recent: dict[str, list[JobRun]] = {}
    # One read transaction: one consistent snapshot over all the jobs.
    db.execute("BEGIN")
    try:
        for (job_id,) in db.execute(JOB_IDS).fetchall():
            runs = runs_from_rows(db.execute(_PAGE, (job_id, _MAX_SEQ, per_job)).fetchall())
            if runs:
                recent[job_id] = runs
    finally:
        db.execute("COMMIT")
    return recent


def read_counts(db: sqlite3.Connection) -> dict[str, dict[str, int]]:
    result: dict[str, dict[str, int]] = {}
    for job_id, outcome, n in db.execute(_COUNTS):
        result.setdefault(job_id, {})[outcome] = n
    return result


def read_job_ids(db: sqlite3.Connection) -> set[str]:
    return {row[0] for row in db.execute(_ALL_JOB_IDS)}


def read_knows(db: sqlite3.Connection, job_id: str) -> bool:
    return bool(db.execute(_KNOWS, (job_id, job_id)).fetchone()[0])


def read_query_plan(db: sqlite3.Connection, outcome: str | None, before_run: bool) -> list[str]:
    explain = "EXPLAIN QUERY PLAN "
    steps: list[Any] = []
    if before_run:
        steps += db.execute(explain + _SEQ_OF_RUN, ("", "")).fetchall()
    if outcome is None:
        steps += db.execute(explain + _PAGE, ("", 0, 1)).fetchall()
    else:
        steps += db.execute(explain + _PAGE_OUTCOME, ("", outcome, 0, 1)).fetchall()
    return [str(step[-1]) for step in steps]
