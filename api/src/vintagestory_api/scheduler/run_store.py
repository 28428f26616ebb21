"""Run history on disk: job runs in an embedded SQLite database that survives restarts.

`RunStore` keeps every recorded run in `<data>/state/<name>` (stdlib `sqlite3`, WAL journal,
`synchronous=NORMAL`) together with per-job outcome counts that outlive retention. It is a
write-behind store: the event loop hands it runs and never waits for the disk. This module
is its public face; the file and its schema are run_db's, the writer thread run_writer's, the
queries run_reads' and the stored form of a run run_rows'.

Threading
    `record`, `finish`, `prune`, `pending_count` and `health` are cheap and never block on the
    disk: call them from the event loop. `open`, `flush`, `close` and every read (`page`,
    `load_recent`, `counts`, `job_ids`, `knows`, `query_plan`) block; call them at startup or
    shutdown, or through `asyncio.to_thread`. Any thread may call any method.

    One writer thread owns the only connection that writes ("one writer"). Changes are
    snapshotted when they are enqueued (the runner keeps assigning fields of a running
    `JobRun`) and committed in small transactions: the writer waits `commit_interval` (0.25 s)
    after the first change of a batch so that a burst of fires shares one commit, then writes
    everything queued, at most `batch_size` changes per transaction. A change is therefore
    committed about 0.25 s after it is made, well inside a second. `synchronous=NORMAL` with WAL
    makes a commit survive a crash of the process (kill -9); after a power loss the last
    commits before it may be lost, never the consistency of the file.

    Reads use a second connection of their own (WAL readers and the writer never wait for each
    other), guarded by a lock. A read first waits (up to 1 s) for the changes enqueued before it
    to be committed, so a page never misses a run the caller recorded just before asking.

Ordering and paging
    `seq` (the rowid) is when the run was recorded: its `started_at`, or for a run that never
    started its `finished_at` (the moment it was skipped or missed), in microseconds since the
    epoch, raised where needed to one more than the newest `seq` so that it strictly increases
    in recording order even when the clock steps back. "Newest first" is `seq` descending; a
    page before a run id is `seq` below that run's, and a page before a time is `seq` below that
    time, both answered from the `(job_id, seq)` or `(job_id, outcome, seq)` index. Only after
    the clock stepped back can a time page be off, by at most the size of the step.

Restarts, counts and retention
    `open` marks every run a previous process left `running` as `interrupted` ("the API stopped
    while it ran", `finished_at` the moment it was noticed, `duration_ms` null). `counts` are
    the finished runs of each job per outcome since the database was created, kept in a table
    of their own that SQLite triggers update in the transaction that stores a run finished, so
    pruning never lowers them and a run is never counted twice. `prune` keeps the newest N runs
    of each job and drops runs older than an age, never a running one; the writer does it in
    transactions of 500 rows with queued changes written in between, so neither requests nor
    the commits of new runs wait for it.

Damage
    A file that is not a database, fails `PRAGMA quick_check`, is a directory, cannot be read,
    or holds tables that are not ours is renamed with its `-wal` and `-shm` files to
    `<name>.corrupt-<UTC timestamp>` (the companions keep their suffix after that name, so
    `sqlite3 <name>.corrupt-<ts>` opens the set as it was) and a new database is started;
    `health` is degraded until the next restart. A database whose schema version is newer than
    ours (written by a newer API, then downgraded) is not damage: it is left untouched and the
    store runs without persistence. So it does when no database can be opened or created at
    all (read-only directory, locked or failing disk): changes are dropped with one logged error
    and `health` is degraded. Opening never raises.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Final, TypeVar

import structlog

from vintagestory_api.kit.schemas import ComponentHealth

from .run_db import SCHEMA_VERSION, Opened, close_quietly, open_database
from .run_reads import (
    RunStoreClosed,
    RunStoreError,
    UnknownRun,
    read_counts,
    read_job_ids,
    read_knows,
    read_page,
    read_query_plan,
    read_recent,
)
from .run_rows import INTERRUPTED_REASON, STORED_OUTCOMES, Clock, StoredOutcome, change_of
from .run_writer import CLOSE, Flush, Prune, RunWriter
from .schemas import JobRun

__all__ = [
    "INTERRUPTED_REASON",
    "SCHEMA_VERSION",
    "STORED_OUTCOMES",
    "RunStore",
    "RunStoreClosed",
    "RunStoreError",
    "StoredOutcome",
    "UnknownRun",
]

logger = structlog.get_logger()

T = TypeVar("T")

DEFAULT_COMMIT_INTERVAL: Final = 0.25
DEFAULT_BATCH_SIZE: Final = 500
# How long a read waits for earlier changes to be committed before it reads what is there.
READ_FLUSH_TIMEOUT: Final = 1.0

_OK: Final = ComponentHealth(status="ok")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class RunStore:
    """Job runs on disk, written behind by one thread; see the module docstring."""

    def __init__(
        self,
        path: Path,
        opened: Opened | None,
        *,
        clock: Clock,
        commit_interval: float,
        batch_size: int,
        problem: str | None = None,
        quarantined_to: Path | None = None,
    ) -> None:
        """Use `RunStore.open`."""
        self._path = path
        # Found at open (damage, no database): reported until the next start.
        self._open_problem = problem
        self._quarantined_to = quarantined_to
        self._interrupted = list(opened.interrupted) if opened is not None else []
        # Guards the ticket counter and the order of items in the queue, and `_closed`.
        self._lock = threading.Lock()
        self._issued = 0
        # Changes dropped before reaching the queue; the writer counts those it fails to write.
        self._dropped_unsent = 0
        self._drop_logged = False
        self._closed = False
        self._read_lock = threading.Lock()
        self._reader = opened.reader if opened is not None else None
        self._writer: RunWriter | None = None
        if opened is not None:
            self._writer = RunWriter(
                opened.writer,
                path,
                clock=clock,
                commit_interval=commit_interval,
                batch_size=batch_size,
                last_seq=opened.last_seq,
            )

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        clock: Clock = _utc_now,
        commit_interval: float = DEFAULT_COMMIT_INTERVAL,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> RunStore:
        """Open or create the database at `path`; blocking, never raises for the file.

        Runs left `running` by the previous process are marked interrupted (see
        `interrupted`). A damaged file is set aside and a new one started; when no database
        can be had, the store keeps nothing (`persistent` is False). `health` says which.
        `clock` gives the time of interrupted runs, of age pruning and of quarantine names.
        """
        if commit_interval < 0 or batch_size < 1:
            raise ValueError("commit_interval must be >= 0 and batch_size >= 1")
        opening = open_database(path, clock)
        return cls(
            path,
            opening.opened,
            clock=clock,
            commit_interval=commit_interval,
            batch_size=batch_size,
            problem=opening.problem,
            quarantined_to=opening.quarantined_to,
        )

    def __enter__(self) -> RunStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- state -----------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self._path

    @property
    def persistent(self) -> bool:
        """Whether runs reach a database; False when none could be opened (see `health`)."""
        return self._writer is not None

    @property
    def health(self) -> ComponentHealth:
        if self._open_problem is not None:
            return ComponentHealth(status="degraded", reason=self._open_problem)
        write_problem = self._writer.problem if self._writer is not None else None
        if write_problem is not None:
            return ComponentHealth(status="degraded", reason=write_problem)
        return _OK

    @property
    def quarantined_to(self) -> Path | None:
        """Where the damaged database found at open was moved; None when there was none."""
        return self._quarantined_to

    @property
    def interrupted(self) -> list[JobRun]:
        """The runs `open` marked interrupted, oldest first."""
        return list(self._interrupted)

    @property
    def pending_count(self) -> int:
        """Changes enqueued and not yet handled by the writer (committed, or dropped)."""
        return self._issued - (self._writer.handled if self._writer is not None else 0)

    @property
    def dropped_count(self) -> int:
        """Changes that never reached the database: no database, closed, or a failed write."""
        return self._dropped_unsent + (self._writer.dropped if self._writer is not None else 0)

    # -- writing (never blocks) ------------------------------------------------------------

    def record(self, run: JobRun) -> None:
        """Store a new run: a running one, or one that never started (skipped, missed).

        The run's fields are copied now; later changes to the object are not seen. A finished
        run is counted once, when it is first stored finished.
        """
        self._enqueue(run)

    def finish(self, run: JobRun) -> None:
        """Store a run's end. A run already stored finished is left as it was; one never
        recorded (its record was lost) is stored now."""
        self._enqueue(run)

    def _enqueue(self, run: JobRun) -> None:
        with self._lock:
            if self._writer is not None and not self._closed:
                self._issued += 1
                self._writer.put(change_of(self._issued, run))
                return
        self._dropped_unsent += 1
        if not self._drop_logged:
            self._drop_logged = True
            why = "the store is closed" if self._closed else "there is no database"
            logger.error("run_store_write_dropped", file=str(self._path), reason=why)

    def prune(self, keep_per_job: int, max_age: timedelta | None = None) -> Future[int]:
        """Delete runs beyond the newest `keep_per_job` of each job and runs recorded more
        than `max_age` ago; a running run is never deleted, counts are never changed.

        Done by the writer thread in transactions of `run_writer.PRUNE_BATCH_SIZE` rows, with
        queued changes written between them. The future gives the number of runs deleted (so
        far, if `close` stops it; one `close` comes before is cancelled); it is done at once,
        with 0, without a database.
        """
        if keep_per_job < 1:
            raise ValueError("keep_per_job must be at least 1")
        future: Future[int] = Future()
        with self._lock:
            if self._writer is not None and not self._closed:
                self._writer.put(Prune(keep_per_job, max_age, future))
                return future
        future.set_result(0)
        return future

    def flush(self, timeout: float | None = 5.0) -> bool:
        """Blocking: wait until every change enqueued before the call is committed (or, when
        its write failed, dropped). False when `timeout` passed first. Pruning is not waited
        for (see the future `prune` returns)."""
        done = threading.Event()
        with self._lock:
            writer = self._writer
            if writer is None:
                return True
            if self._closed:
                return not writer.is_alive()
            if writer.handled >= self._issued:
                return True
            writer.put(Flush(done))
        writer.hurry()
        return done.wait(timeout)

    def close(self, timeout: float | None = 10.0) -> bool:
        """Blocking: write everything enqueued, stop a prune in progress, close the database.

        False when the writer did not finish within `timeout` (it is then abandoned; what it
        did not commit is lost, the file stays consistent). Further changes are dropped.
        """
        with self._lock:
            writer = self._writer
            if self._closed:
                return writer is None or not writer.is_alive()
            self._closed = True
            if writer is not None:
                writer.put(CLOSE)
        # The reader goes first so that the writer's connection is the last one and takes the
        # WAL back into the main file as it closes.
        with self._read_lock:
            close_quietly(self._reader)
            self._reader = None
        if writer is None:
            return True
        writer.hurry()
        if not writer.join(timeout):
            logger.error("run_store_close_timed_out", file=str(self._path))
            return False
        logger.info("run_store_closed", file=str(self._path), dropped=self.dropped_count)
        return True

    # -- reading (blocking) ----------------------------------------------------------------

    def page(
        self,
        job_id: str,
        *,
        limit: int = 50,
        before: str | datetime | None = None,
        outcome: str | None = None,
    ) -> list[JobRun]:
        """Blocking: up to `limit` of the job's runs, newest first.

        `before` a run id: runs recorded before that run (raises `UnknownRun` when the job has
        no stored run of that id). `before` a time: runs that started, or for runs that never
        started were recorded, before it (a naive time is UTC). `outcome`: only runs with
        that outcome (one of `STORED_OUTCOMES`, else ValueError). Without a database: [].
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if outcome is not None and outcome not in STORED_OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        return self._read(lambda db: read_page(db, job_id, limit, before, outcome), list)

    def load_recent(self, per_job: int) -> dict[str, list[JobRun]]:
        """Blocking: the newest `per_job` runs of every job with stored runs, newest first;
        for seeding the in-memory history at startup."""
        if per_job < 1:
            raise ValueError("per_job must be at least 1")
        return self._read(lambda db: read_recent(db, per_job), dict)

    def counts(self) -> dict[str, dict[str, int]]:
        """Blocking: finished runs of each job per outcome, since the database was created.

        Pruning does not lower them. A run is counted when it is first stored finished
        (interrupted ones when `open` marks them); a change lost to a failed write is not.
        """
        return self._read(read_counts, dict)

    def job_ids(self) -> set[str]:
        """Blocking: every job with stored runs or counts, including removed jobs."""
        return self._read(read_job_ids, set)

    def knows(self, job_id: str) -> bool:
        """Blocking: whether the job has stored runs or counts (a removed job's stay)."""
        return self._read(lambda db: read_knows(db, job_id), lambda: False)

    def query_plan(self, *, outcome: str | None = None, before_run: bool = False) -> list[str]:
        """Blocking: SQLite's plan for the queries of `page` with these arguments, one line
        per step (a diagnostic: the lines should name an index, never a scan or a sort)."""
        return self._read(lambda db: read_query_plan(db, outcome, before_run), list)

    def _read(self, work: Callable[[sqlite3.Connection], T], empty: Callable[[], T]) -> T:
        if self._writer is None:
            return empty()
        # Changes enqueued before this read are part of what it answers.
        self.flush(READ_FLUSH_TIMEOUT)
        with self._read_lock:
            if self._reader is None:
                raise RunStoreClosed("the run store is closed")
            try:
                return work(self._reader)
            except sqlite3.Error as exc:
                raise RunStoreError(f"run history could not be read: {exc}") from exc
