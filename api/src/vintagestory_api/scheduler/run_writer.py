"""The run store's one writer: a thread that owns the only connection that writes. It takes
the changes the event loop enqueues, waits a commit interval after the first change of a batch
so that a burst of fires shares one commit, upserts at most a batch size of them per
transaction, serves flush and close markers in queue order, and prunes in small transactions
with queued changes written in between. A failed write drops its changes and is reported until
a later commit succeeds; it never ends the thread.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections import deque
from collections.abc import Generator
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

import structlog

from .run_db import JOB_IDS, close_quietly
from .run_rows import Change, Clock, db_row, us

logger = structlog.get_logger()

# Rows deleted per pruning transaction: a few milliseconds of write lock at most.
PRUNE_BATCH_SIZE: Final = 500

# One statement for every change, so that a batch is one `executemany`: a new run is inserted,
# a running one takes the new fields, a finished one is final (the WHERE). The triggers in the
# schema count a run as it becomes finished, in the same transaction.
_UPSERT: Final = (
    "INSERT INTO runs (seq, run_id, job_id, trigger, outcome, scheduled_for, scheduled_offset, "
    "started_at, finished_at, duration_ms, lateness_ms, reason, error_type, error_message, "
    "result_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (run_id) DO UPDATE SET trigger = excluded.trigger, "
    "outcome = excluded.outcome, scheduled_for = excluded.scheduled_for, "
    "scheduled_offset = excluded.scheduled_offset, started_at = excluded.started_at, "
    "finished_at = excluded.finished_at, duration_ms = excluded.duration_ms, "
    "lateness_ms = excluded.lateness_ms, reason = excluded.reason, "
    "error_type = excluded.error_type, error_message = excluded.error_message, "
    "result_json = excluded.result_json "
    "WHERE runs.outcome = 'running'"
)
_NTH_NEWEST: Final = "SELECT seq FROM runs WHERE job_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?"
_DELETE_OLD: Final = (
    "DELETE FROM runs WHERE seq IN (SELECT seq FROM runs WHERE seq < ? "
    "AND outcome != 'running' ORDER BY seq LIMIT ?)"
)
_DELETE_BEYOND: Final = (
    "DELETE FROM runs WHERE seq IN (SELECT seq FROM runs WHERE job_id = ? AND seq < ? "
    "AND outcome != 'running' ORDER BY seq LIMIT ?)"
)


# -- the writer's work items ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Flush:
    done: threading.Event


@dataclass(slots=True)
class Prune:
    keep_per_job: int
    max_age: timedelta | None
    future: Future[int]
    deleted: int = 0
    steps: Generator[None, None, None] | None = field(default=None)


class _Close:
    pass


CLOSE: Final = _Close()
Item = Change | Flush | Prune | _Close


class RunWriter:
    """The writer thread and what it alone changes: its connection, the last ticket it
    handled, the changes it failed to write, the pruning in progress.

    `put` is for the store, which orders tickets and items under its own lock.
    """

    def __init__(
        self,
        db: sqlite3.Connection,
        path: Path,
        *,
        clock: Clock,
        commit_interval: float,
        batch_size: int,
        last_seq: int,
    ) -> None:
        self._db: sqlite3.Connection | None = db
        self._path = path
        self._clock = clock
        self._commit_interval = commit_interval
        self._batch_size = batch_size
        self._last_seq = last_seq
        self._queue: queue.SimpleQueue[Item] = queue.SimpleQueue()
        self._hurry = threading.Event()
        self._pruning: deque[Prune] = deque()
        # The ticket of the last change committed or dropped.
        self.handled = 0
        # Changes a failed write dropped.
        self.dropped = 0
        # The latest write failure: reported until a later commit succeeds.
        self.problem: str | None = None
        # A daemon: a writer stuck on a dead disk must not keep the process alive; SQLite
        # survives being cut off mid-transaction.
        self._thread = threading.Thread(target=self._loop, name="run-store-writer", daemon=True)
        self._thread.start()

    def put(self, item: Item) -> None:
        self._queue.put(item)

    def hurry(self) -> None:
        """Stop waiting for the commit interval: someone waits for what is queued."""
        self._hurry.set()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float | None) -> bool:
        """Wait for the thread to end (after `CLOSE`); False when `timeout` passed first."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _loop(self) -> None:
        closing = False
        try:
            while not closing:
                try:
                    closing = self._handle(self._take())
                    if self._pruning and not closing:
                        self._prune_step()
                except Exception:
                    # A bug here must not end the thread: queued changes would pile up.
                    logger.exception("run_store_writer_error")
        finally:
            self._stop_pruning()
            close_quietly(self._db)
            self._db = None

    def _take(self) -> list[Item]:
        """The next items: waits for one (unless pruning), then for the commit interval."""
        pruning = bool(self._pruning)
        try:
            first = self._queue.get(block=not pruning)
        except queue.Empty:
            return []
        if isinstance(first, tuple) and not pruning:
            # Let the changes of the next moments join this one: a burst of fires (1,000 jobs
            # due together) becomes one commit instead of competing with the loop for the GIL.
            self._hurry.wait(self._commit_interval)
        self._hurry.clear()
        items = [first]
        try:
            while True:
                items.append(self._queue.get_nowait())
        except queue.Empty:
            pass
        return items

    def _handle(self, items: list[Item]) -> bool:
        """Write the changes in order, serving markers where they stand; True on close."""
        closing = False
        changes: list[Change] = []
        for item in items:
            if isinstance(item, tuple):
                changes.append(item)
                if len(changes) >= self._batch_size:
                    self._commit(changes)
                    changes = []
                continue
            if changes:
                self._commit(changes)
                changes = []
            if isinstance(item, Flush):
                item.done.set()
            elif isinstance(item, Prune):
                self._pruning.append(item)
            else:
                closing = True
        if changes:
            self._commit(changes)
        return closing

    def _commit(self, changes: list[Change]) -> None:
        try:
            self._apply(changes)
        except Exception as exc:
            self._rollback()
            environmental = isinstance(exc, sqlite3.DatabaseError) and not isinstance(
                exc, sqlite3.IntegrityError
            )
            if len(changes) > 1 and not environmental:
                # One bad change (a value SQLite cannot hold) must not cost the batch.
                for change in changes:
                    self._commit([change])
            else:
                self._write_failed(len(changes), exc)
        else:
            if self.problem is not None:
                logger.info("run_store_write_recovered", file=str(self._path))
                self.problem = None
        self.handled = changes[-1][0]

    def _apply(self, changes: list[Change]) -> None:
        db = self._db
        assert db is not None
        db.execute("BEGIN IMMEDIATE")
        # seq is given to every change; for one that turns out to update its run it is unused.
        db.executemany(_UPSERT, ((self._next_seq(row), *row) for row in map(db_row, changes)))
        db.execute("COMMIT")

    def _next_seq(self, row: tuple[Any, ...]) -> int:
        # started_at, else finished_at (the moment of a skip or miss), else now.
        recorded = row[6] if row[6] is not None else row[7]
        if recorded is None:
            recorded = us(self._clock())
        self._last_seq = max(recorded, self._last_seq + 1)
        return self._last_seq

    def _rollback(self) -> None:
        db = self._db
        if db is not None and db.in_transaction:
            try:
                db.execute("ROLLBACK")
            except sqlite3.Error:
                logger.exception("run_store_rollback_failed")

    def _write_failed(self, count: int, exc: Exception) -> None:
        self.dropped += count
        if self.problem is None:
            # Once per spell of failures (a full disk fails every batch until freed).
            logger.error(
                "run_store_write_failed", file=str(self._path), dropped=count, error=str(exc)
            )
        self.problem = f"{self._path.name}: run changes could not be saved ({exc})"

    # -- pruning ---------------------------------------------------------------------------

    def _prune_step(self) -> None:
        task = self._pruning[0]
        if task.steps is None:
            if not task.future.set_running_or_notify_cancel():
                self._pruning.popleft()
                return
            task.steps = self._prune_steps(task)
        try:
            next(task.steps)
        except StopIteration:
            self._pruning.popleft()
            if task.deleted:
                logger.info("run_store_pruned", deleted=task.deleted)
            task.future.set_result(task.deleted)
        except Exception as exc:
            self._rollback()
            self._pruning.popleft()
            logger.exception("run_store_prune_failed", deleted=task.deleted)
            task.future.set_exception(exc)

    def _prune_steps(self, task: Prune) -> Generator[None, None, None]:
        """One small transaction per step; the writer serves queued changes in between."""
        db = self._db
        assert db is not None
        if task.max_age is not None:
            cutoff = us(self._clock() - task.max_age)
            while True:
                deleted = self._delete(_DELETE_OLD, (cutoff, PRUNE_BATCH_SIZE))
                task.deleted += deleted
                yield
                if deleted < PRUNE_BATCH_SIZE:
                    break
        for (job_id,) in db.execute(JOB_IDS).fetchall():
            newest = db.execute(_NTH_NEWEST, (job_id, task.keep_per_job - 1)).fetchone()
            if newest is not None:
                while True:
                    deleted = self._delete(_DELETE_BEYOND, (job_id, newest[0], PRUNE_BATCH_SIZE))
                    task.deleted += deleted
                    if deleted < PRUNE_BATCH_SIZE:
                        break
                    yield
            yield

    def _delete(self, statement: str, parameters: tuple[Any, ...]) -> int:
        db = self._db
        assert db is not None
        db.execute("BEGIN IMMEDIATE")
        deleted = db.execute(statement, parameters).rowcount
        db.execute("COMMIT")
        return deleted

    def _stop_pruning(self) -> None:
        while self._pruning:
            task = self._pruning.popleft()
            if task.steps is None:
                task.future.cancel()
                continue
            task.steps.close()
            logger.info("run_store_prune_stopped", deleted=task.deleted)
            task.future.set_result(task.deleted)
