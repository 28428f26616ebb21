"""Run history on disk: job runs in an embedded SQLite database that survives restarts.

`RunStore` keeps every recorded run in `<data>/state/<name>` (stdlib `sqlite3`, WAL journal,
`synchronous=NORMAL`) together with per-job outcome counts that outlive retention. It is a
write-behind store: the event loop hands it runs and never waits for the disk.

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

import os
import queue
import sqlite3
import stat
import threading
from collections import deque
from collections.abc import Callable, Generator
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, TypeVar, get_args, overload

import structlog
from pydantic_core import from_json, to_json

from vintagestory_api.kit.schemas import ComponentHealth

from .schemas import JobRun, RunError, RunOutcome, RunTrigger

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
Clock = Callable[[], datetime]

# `RunOutcome` plus "interrupted": a run the API was still running when it stopped. Kept here
# until scheduler/schemas.py knows it too; `_run_from_row` adapts by itself once it does.
StoredOutcome = Literal[
    "running",
    "succeeded",
    "failed",
    "timed_out",
    "skipped",
    "missed",
    "cancelled",
    "interrupted",
]
STORED_OUTCOMES: Final[frozenset[str]] = frozenset(get_args(StoredOutcome))
INTERRUPTED: Final = "interrupted"
INTERRUPTED_REASON: Final = "the API stopped while it ran"

SCHEMA_VERSION: Final = 1
DEFAULT_COMMIT_INTERVAL: Final = 0.25
DEFAULT_BATCH_SIZE: Final = 500
# Rows deleted per pruning transaction: a few milliseconds of write lock at most.
PRUNE_BATCH_SIZE: Final = 500
# How long a read waits for earlier changes to be committed before it reads what is there.
READ_FLUSH_TIMEOUT: Final = 1.0
BUSY_TIMEOUT_SECONDS: Final = 5.0

_MODEL_OUTCOMES: Final[frozenset[str]] = frozenset(get_args(RunOutcome))
_TRIGGERS: Final[frozenset[str]] = frozenset(get_args(RunTrigger))
_SQLITE_HEADER: Final = b"SQLite format 3\x00"
_MAX_SEQ: Final = 2**63 - 1
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US: Final = timedelta(microseconds=1)
_OK: Final = ComponentHealth(status="ok")

_RUN_COLUMNS: Final = (
    "seq",
    "run_id",
    "job_id",
    "trigger",
    "outcome",
    "scheduled_for",
    "scheduled_offset",
    "started_at",
    "finished_at",
    "duration_ms",
    "lateness_ms",
    "reason",
    "error_type",
    "error_message",
    "result_json",
)
_COUNT_COLUMNS: Final = ("job_id", "outcome", "n")

# Timestamps are integer microseconds since the epoch, UTC, so they sort and compare as
# numbers. `scheduled_offset` is the UTC offset (seconds) `scheduled_for` was given in: fire
# times are in the job's timezone and are shown that way; started_at and finished_at are UTC.
_CREATE_TABLES: Final = (
    """
    CREATE TABLE runs (
        seq INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL UNIQUE,
        job_id TEXT NOT NULL,
        trigger TEXT NOT NULL,
        outcome TEXT NOT NULL,
        scheduled_for INTEGER,
        scheduled_offset INTEGER,
        started_at INTEGER,
        finished_at INTEGER,
        duration_ms INTEGER,
        lateness_ms INTEGER,
        reason TEXT,
        error_type TEXT,
        error_message TEXT,
        result_json TEXT
    )
    """,
    # Finished runs per job and outcome since the database was created; not pruned.
    """
    CREATE TABLE counts (
        job_id TEXT NOT NULL,
        outcome TEXT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (job_id, outcome)
    ) WITHOUT ROWID
    """,
)
# Run on every open, so that a dropped index or trigger comes back instead of paging turning
# into scans or counts silently stopping.
_CREATE_INDEXES: Final = (
    "CREATE INDEX IF NOT EXISTS runs_by_job ON runs (job_id, seq)",
    "CREATE INDEX IF NOT EXISTS runs_by_job_outcome ON runs (job_id, outcome, seq)",
    # A run is counted when it is stored finished: inserted so (skipped, missed, or a finish
    # whose record was lost) or changed from running to an outcome (a finish, an interrupt).
    """
    CREATE TRIGGER IF NOT EXISTS count_inserted AFTER INSERT ON runs
    WHEN new.outcome != 'running'
    BEGIN
        INSERT INTO counts (job_id, outcome, n) VALUES (new.job_id, new.outcome, 1)
        ON CONFLICT (job_id, outcome) DO UPDATE SET n = n + 1;
    END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS count_finished AFTER UPDATE OF outcome ON runs
    WHEN old.outcome = 'running' AND new.outcome != 'running'
    BEGIN
        INSERT INTO counts (job_id, outcome, n) VALUES (new.job_id, new.outcome, 1)
        ON CONFLICT (job_id, outcome) DO UPDATE SET n = n + 1;
    END
    """,
)

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
_RUNNING: Final = (
    "SELECT run_id, job_id, trigger, outcome, scheduled_for, scheduled_offset, started_at, "
    "finished_at, duration_ms, lateness_ms, reason, error_type, error_message, result_json "
    "FROM runs WHERE outcome = 'running' ORDER BY seq"
)
_SEQ_OF_RUN: Final = "SELECT seq FROM runs WHERE run_id = ? AND job_id = ?"
# One statement for every change, so that a batch is one `executemany`: a new run is inserted,
# a running one takes the new fields, a finished one is final (the WHERE). The triggers below
# count a run as it becomes finished, in the same transaction.
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
_INTERRUPT: Final = (
    "UPDATE runs SET outcome = 'interrupted', reason = ?, finished_at = ?, duration_ms = NULL "
    "WHERE outcome = 'running'"
)
_JOB_IDS: Final = "SELECT DISTINCT job_id FROM runs"
_ALL_JOB_IDS: Final = "SELECT DISTINCT job_id FROM runs UNION SELECT job_id FROM counts"
_KNOWS: Final = (
    "SELECT EXISTS (SELECT 1 FROM runs WHERE job_id = ?) "
    "OR EXISTS (SELECT 1 FROM counts WHERE job_id = ?)"
)
_COUNTS: Final = "SELECT job_id, outcome, n FROM counts ORDER BY job_id, outcome"
_NTH_NEWEST: Final = "SELECT seq FROM runs WHERE job_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?"
_DELETE_OLD: Final = (
    "DELETE FROM runs WHERE seq IN (SELECT seq FROM runs WHERE seq < ? "
    "AND outcome != 'running' ORDER BY seq LIMIT ?)"
)
_DELETE_BEYOND: Final = (
    "DELETE FROM runs WHERE seq IN (SELECT seq FROM runs WHERE job_id = ? AND seq < ? "
    "AND outcome != 'running' ORDER BY seq LIMIT ?)"
)


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


def _utc_now() -> datetime:
    return datetime.now(UTC)


# -- conversions ---------------------------------------------------------------------------


@overload
def _us(moment: datetime) -> int: ...
@overload
def _us(moment: None) -> None: ...
@overload
def _us(moment: datetime | None) -> int | None: ...
def _us(moment: datetime | None) -> int | None:
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
_Change = tuple[Any, ...]


def _db_row(change: _Change) -> tuple[Any, ...]:
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
        _us(scheduled_for),
        _offset(scheduled_for),
        _us(started_at),
        _us(finished_at),
        duration_ms,
        lateness_ms,
        _text(reason),
        _text(error.type) if error is not None else None,
        _text(error.message) if error is not None else None,
        result_json,
    )


def _run_from_row(row: tuple[Any, ...]) -> JobRun | None:
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


def _runs(rows: list[Any]) -> list[JobRun]:
    return [run for row in rows if (run := _run_from_row(row)) is not None]


# -- opening -------------------------------------------------------------------------------


class _Problem(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Damaged(_Problem):
    """The file is unusable as it is: keep it aside and start a new one."""


class _Unusable(_Problem):
    """No database now, but nothing to set aside: run without persistence."""


@dataclass
class _Opened:
    writer: sqlite3.Connection
    reader: sqlite3.Connection
    interrupted: list[JobRun]
    last_seq: int


def _check_file(path: Path) -> None:
    """What can be told before SQLite touches the file (and might block on or rewrite it)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise _Unusable(f"it cannot be examined ({exc.strerror or exc})") from exc
    if stat.S_ISDIR(mode):
        raise _Damaged("a directory is in its place")
    if not stat.S_ISREG(mode):
        raise _Damaged("it is not a regular file")
    try:
        with path.open("rb") as handle:
            header = handle.read(len(_SQLITE_HEADER))
    except PermissionError as exc:
        raise _Damaged(f"it cannot be read ({exc.strerror or exc})") from exc
    except OSError as exc:
        # An I/O error says more about the disk than the file: leave it for the admin.
        raise _Unusable(f"it cannot be read ({exc.strerror or exc})") from exc
    # An empty file is an empty database to SQLite; anything else must start with its header.
    if header and header != _SQLITE_HEADER:
        raise _Damaged("it is not an SQLite database")


def _classify(exc: sqlite3.Error, path: Path) -> _Problem:
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
        return _Damaged(f"it is damaged ({exc})")
    if name.startswith(("SQLITE_CANTOPEN", "SQLITE_READONLY", "SQLITE_PERM")) and path.exists():
        return _Damaged(f"it cannot be opened for writing ({exc})")
    # Busy or locked (another process), disk full, I/O errors: nothing is wrong with the file.
    return _Unusable(f"the database cannot be used ({exc})")


def _connect(path: Path) -> sqlite3.Connection:
    # Autocommit mode (isolation_level=None): transactions are opened explicitly, so that what
    # a transaction holds is visible here, not decided by the module's implicit BEGINs.
    return sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
    )


def _schema_matches(db: sqlite3.Connection) -> bool:
    runs = tuple(row[1] for row in db.execute("PRAGMA table_info(runs)"))
    counts = tuple(row[1] for row in db.execute("PRAGMA table_info(counts)"))
    return runs == _RUN_COLUMNS and counts == _COUNT_COLUMNS


def _prepare(db: sqlite3.Connection) -> None:
    """Check the file and bring it to our schema; raises `_Problem` (or sqlite3.Error)."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise _Unusable(
            f"its schema version {version} is newer than this API's ({SCHEMA_VERSION}); it is "
            "left as it is for the newer version"
        )
    problems = [row[0] for row in db.execute("PRAGMA quick_check").fetchall()]
    if problems != ["ok"]:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise _Damaged(f"its integrity check failed: {problems[0]}{more}")
    tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    if version == 0 and tables:
        raise _Damaged("it holds tables that are not a run history")
    if version != 0 and not _schema_matches(db):
        raise _Damaged(f"its tables do not match schema version {version}")
    mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        # Some network filesystems cannot share the WAL index; the store still works, with
        # readers and the writer taking turns.
        logger.warning("run_store_not_wal", journal_mode=mode)
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("BEGIN IMMEDIATE")
    try:
        if version == 0:
            for statement in _CREATE_TABLES:
                db.execute(statement)
            # Set in the same transaction as the tables: a crash leaves both or neither.
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")
        for statement in _CREATE_INDEXES:
            db.execute(statement)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _interrupt_running(db: sqlite3.Connection, now: datetime) -> list[JobRun]:
    """Mark the runs a previous process left running as interrupted, and count them.

    `finished_at` is the moment this was noticed (the real end lies between the last commit
    and now and is unknown), so `duration_ms` is null.
    """
    finished = _us(now)
    db.execute("BEGIN IMMEDIATE")
    try:
        rows = db.execute(_RUNNING).fetchall()
        if rows:
            # Counted by the count_finished trigger.
            db.execute(_INTERRUPT, (INTERRUPTED_REASON, finished))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    runs = _runs(
        [(*row[:3], INTERRUPTED, *row[4:7], finished, None, row[9], INTERRUPTED_REASON, *row[11:])
         for row in rows]
    )  # fmt: skip
    if runs:
        logger.warning(
            "run_store_runs_interrupted",
            runs=[{"job_id": run.job_id, "run_id": run.run_id} for run in runs],
        )
    return runs


def _open_database(path: Path, clock: Clock) -> _Opened:
    """Open, check and prepare the database; raises `_Damaged` or `_Unusable`, nothing else."""
    try:
        return _try_open(path, clock)
    except _Problem:
        raise
    except Exception as exc:
        # Whatever went wrong, the API starts: without persistence, and saying why.
        logger.exception("run_store_open_failed", file=str(path))
        raise _Unusable(f"it could not be opened ({exc!r})") from exc


def _try_open(path: Path, clock: Clock) -> _Opened:
    _check_file(path)
    try:
        writer = _connect(path)
    except sqlite3.Error as exc:
        raise _classify(exc, path) from exc
    reader: sqlite3.Connection | None = None
    try:
        _prepare(writer)
        interrupted = _interrupt_running(writer, clock())
        last_seq = writer.execute("SELECT max(seq) FROM runs").fetchone()[0] or 0
        reader = _connect(path)
        # A guard, not a permission: every write goes through the writer thread.
        reader.execute("PRAGMA query_only = ON")
    except sqlite3.Error as exc:
        _close_quietly(writer, reader)
        raise _classify(exc, path) from exc
    except BaseException:
        _close_quietly(writer, reader)
        raise
    return _Opened(writer, reader, interrupted, last_seq)


def _close_quietly(*connections: sqlite3.Connection | None) -> None:
    for connection in connections:
        if connection is not None:
            try:
                connection.close()
            except sqlite3.Error:
                logger.exception("run_store_close_failed")


def _companions(path: Path) -> tuple[Path, Path]:
    return path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")


def _quarantine(path: Path, now: datetime) -> Path:
    """Rename the database and its WAL files to `<name>.corrupt-<UTC timestamp>[-wal|-shm]`.

    The same naming as the settings files (kit/state_files.py); never overwrites an
    earlier one. The WAL goes first: left next to a new database, SQLite would replay it there.
    """
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    counter = 1
    while any(os.path.lexists(p) for p in (target, *_companions(target))):
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{counter}")
        counter += 1
    for companion, kept in zip(_companions(path), _companions(target), strict=True):
        if os.path.lexists(companion):
            os.rename(companion, kept)
    if os.path.lexists(path):
        os.rename(path, target)
    try:
        fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        logger.warning("run_store_dir_fsync_failed", directory=str(path.parent))
    return target


# -- the writer's work items ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Flush:
    done: threading.Event


@dataclass(slots=True)
class _Prune:
    keep_per_job: int
    max_age: timedelta | None
    future: Future[int]
    deleted: int = 0
    steps: Generator[None, None, None] | None = field(default=None)


class _Close:
    pass


_CLOSE: Final = _Close()
_Item = _Change | _Flush | _Prune | _Close


class RunStore:
    """Job runs on disk, written behind by one thread; see the module docstring."""

    def __init__(
        self,
        path: Path,
        opened: _Opened | None,
        *,
        clock: Clock,
        commit_interval: float,
        batch_size: int,
        problem: str | None = None,
        quarantined_to: Path | None = None,
    ) -> None:
        """Use `RunStore.open`."""
        self._path = path
        self._clock = clock
        self._commit_interval = commit_interval
        self._batch_size = batch_size
        # Found at open (damage, no database): reported until the next start.
        self._open_problem = problem
        # The latest write failure: reported until a later commit succeeds.
        self._write_problem: str | None = None
        self._quarantined_to = quarantined_to
        self._interrupted = list(opened.interrupted) if opened is not None else []
        self._persistent = opened is not None
        # Guards the ticket counter and the order of items in the queue, and `_closed`.
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._hurry = threading.Event()
        self._issued = 0
        self._handled = 0
        # Two counters, each changed by one side only: callers drop, the writer fails writes.
        self._dropped_unsent = 0
        self._dropped_unwritten = 0
        self._drop_logged = False
        self._closed = False
        self._pruning: deque[_Prune] = deque()
        self._read_lock = threading.Lock()
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._last_seq = 0
        self._thread: threading.Thread | None = None
        if opened is not None:
            self._writer = opened.writer
            self._reader = opened.reader
            self._last_seq = opened.last_seq
            # A daemon: a writer stuck on a dead disk must not keep the process alive; SQLite
            # survives being cut off mid-transaction.
            self._thread = threading.Thread(
                target=self._write_loop, name="run-store-writer", daemon=True
            )
            self._thread.start()

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
        options: dict[str, Any] = {
            "clock": clock,
            "commit_interval": commit_interval,
            "batch_size": batch_size,
        }

        def without_database(reason: str) -> RunStore:
            logger.error("run_store_unavailable", file=str(path), reason=reason)
            problem = f"{path.name}: {reason}; run history is kept in memory only until restart"
            return cls(path, None, problem=problem, **options)

        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return without_database(f"its directory cannot be created ({exc.strerror or exc})")
        try:
            opened = _open_database(path, clock)
        except _Unusable as exc:
            return without_database(exc.reason)
        except _Damaged as exc:
            damage = exc.reason
        else:
            logger.info("run_store_opened", file=str(path), interrupted=len(opened.interrupted))
            return cls(path, opened, **options)
        try:
            kept = _quarantine(path, clock())
        except OSError as exc:
            return without_database(f"{damage}; it could not be moved aside ({exc})")
        logger.error("run_store_corrupt", file=str(path), reason=damage, kept_as=str(kept))
        try:
            opened = _open_database(path, clock)
        except _Problem as exc:
            return without_database(
                f"{damage}; kept as {kept.name}; a new database could not be started: {exc}"
            )
        problem = f"{path.name}: {damage}; kept as {kept.name}; started a new, empty run history"
        return cls(path, opened, problem=problem, quarantined_to=kept, **options)

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
        return self._persistent

    @property
    def health(self) -> ComponentHealth:
        if self._open_problem is not None:
            return ComponentHealth(status="degraded", reason=self._open_problem)
        if self._write_problem is not None:
            return ComponentHealth(status="degraded", reason=self._write_problem)
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
        return self._issued - self._handled

    @property
    def dropped_count(self) -> int:
        """Changes that never reached the database: no database, closed, or a failed write."""
        return self._dropped_unsent + self._dropped_unwritten

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
            if self._persistent and not self._closed:
                self._issued += 1
                self._queue.put(
                    (
                        self._issued,
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
                )
                return
        self._dropped_unsent += 1
        if not self._drop_logged:
            self._drop_logged = True
            why = "the store is closed" if self._closed else "there is no database"
            logger.error("run_store_write_dropped", file=str(self._path), reason=why)

    def prune(self, keep_per_job: int, max_age: timedelta | None = None) -> Future[int]:
        """Delete runs beyond the newest `keep_per_job` of each job and runs recorded more
        than `max_age` ago; a running run is never deleted, counts are never changed.

        Done by the writer thread in transactions of `PRUNE_BATCH_SIZE` rows, with queued
        changes written between them. The future gives the number of runs deleted (so far, if
        `close` stops it; one `close` comes before is cancelled); it is done at once, with 0,
        without a database.
        """
        if keep_per_job < 1:
            raise ValueError("keep_per_job must be at least 1")
        future: Future[int] = Future()
        with self._lock:
            if self._persistent and not self._closed:
                self._queue.put(_Prune(keep_per_job, max_age, future))
                return future
        future.set_result(0)
        return future

    def flush(self, timeout: float | None = 5.0) -> bool:
        """Blocking: wait until every change enqueued before the call is committed (or, when
        its write failed, dropped). False when `timeout` passed first. Pruning is not waited
        for (see the future `prune` returns)."""
        done = threading.Event()
        with self._lock:
            if not self._persistent:
                return True
            if self._closed:
                return self._thread is None or not self._thread.is_alive()
            if self._handled >= self._issued:
                return True
            self._queue.put(_Flush(done))
        self._hurry.set()
        return done.wait(timeout)

    def close(self, timeout: float | None = 10.0) -> bool:
        """Blocking: write everything enqueued, stop a prune in progress, close the database.

        False when the writer did not finish within `timeout` (it is then abandoned; what it
        did not commit is lost, the file stays consistent). Further changes are dropped.
        """
        with self._lock:
            if self._closed:
                return self._thread is None or not self._thread.is_alive()
            self._closed = True
            if self._persistent:
                self._queue.put(_CLOSE)
        # The reader goes first so that the writer's connection is the last one and takes the
        # WAL back into the main file as it closes.
        with self._read_lock:
            _close_quietly(self._reader)
            self._reader = None
        self._hurry.set()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        if self._thread.is_alive():
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

        def read(db: sqlite3.Connection) -> list[JobRun]:
            bound = _MAX_SEQ
            if isinstance(before, datetime):
                bound = _us(before)
            elif before is not None:
                row = db.execute(_SEQ_OF_RUN, (before, job_id)).fetchone()
                if row is None:
                    raise UnknownRun(job_id, before)
                bound = row[0]
            if outcome is None:
                return _runs(db.execute(_PAGE, (job_id, bound, limit)).fetchall())
            return _runs(db.execute(_PAGE_OUTCOME, (job_id, outcome, bound, limit)).fetchall())

        return self._read(read, list)

    def load_recent(self, per_job: int) -> dict[str, list[JobRun]]:
        """Blocking: the newest `per_job` runs of every job with stored runs, newest first;
        for seeding the in-memory history at startup."""
        if per_job < 1:
            raise ValueError("per_job must be at least 1")

        def read(db: sqlite3.Connection) -> dict[str, list[JobRun]]:
            recent: dict[str, list[JobRun]] = {}
            # One read transaction: one consistent snapshot over all the jobs.
            db.execute("BEGIN")
            try:
                for (job_id,) in db.execute(_JOB_IDS).fetchall():
                    runs = _runs(db.execute(_PAGE, (job_id, _MAX_SEQ, per_job)).fetchall())
                    if runs:
                        recent[job_id] = runs
            finally:
                db.execute("COMMIT")
            return recent

        return self._read(read, dict)

    def counts(self) -> dict[str, dict[str, int]]:
        """Blocking: finished runs of each job per outcome, since the database was created.

        Pruning does not lower them. A run is counted when it is first stored finished
        (interrupted ones when `open` marks them); a change lost to a failed write is not.
        """

        def read(db: sqlite3.Connection) -> dict[str, dict[str, int]]:
            result: dict[str, dict[str, int]] = {}
            for job_id, outcome, n in db.execute(_COUNTS):
                result.setdefault(job_id, {})[outcome] = n
            return result

        return self._read(read, dict)

    def job_ids(self) -> set[str]:
        """Blocking: every job with stored runs or counts, including removed jobs."""
        return self._read(lambda db: {row[0] for row in db.execute(_ALL_JOB_IDS)}, set)

    def knows(self, job_id: str) -> bool:
        """Blocking: whether the job has stored runs or counts (a removed job's stay)."""
        return self._read(
            lambda db: bool(db.execute(_KNOWS, (job_id, job_id)).fetchone()[0]), lambda: False
        )

    def query_plan(self, *, outcome: str | None = None, before_run: bool = False) -> list[str]:
        """Blocking: SQLite's plan for the queries of `page` with these arguments, one line
        per step (a diagnostic: the lines should name an index, never a scan or a sort)."""

        def read(db: sqlite3.Connection) -> list[str]:
            explain = "EXPLAIN QUERY PLAN "
            steps: list[Any] = []
            if before_run:
                steps += db.execute(explain + _SEQ_OF_RUN, ("", "")).fetchall()
            if outcome is None:
                steps += db.execute(explain + _PAGE, ("", 0, 1)).fetchall()
            else:
                steps += db.execute(explain + _PAGE_OUTCOME, ("", outcome, 0, 1)).fetchall()
            return [str(step[-1]) for step in steps]

        return self._read(read, list)

    def _read(self, work: Callable[[sqlite3.Connection], T], empty: Callable[[], T]) -> T:
        if not self._persistent:
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

    # -- the writer thread -----------------------------------------------------------------

    def _write_loop(self) -> None:
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
            _close_quietly(self._writer)
            self._writer = None

    def _take(self) -> list[_Item]:
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

    def _handle(self, items: list[_Item]) -> bool:
        """Write the changes in order, serving markers where they stand; True on close."""
        closing = False
        changes: list[_Change] = []
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
            if isinstance(item, _Flush):
                item.done.set()
            elif isinstance(item, _Prune):
                self._pruning.append(item)
            else:
                closing = True
        if changes:
            self._commit(changes)
        return closing

    def _commit(self, changes: list[_Change]) -> None:
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
            if self._write_problem is not None:
                logger.info("run_store_write_recovered", file=str(self._path))
                self._write_problem = None
        self._handled = changes[-1][0]

    def _apply(self, changes: list[_Change]) -> None:
        db = self._writer
        assert db is not None
        db.execute("BEGIN IMMEDIATE")
        # seq is given to every change; for one that turns out to update its run it is unused.
        db.executemany(_UPSERT, ((self._next_seq(row), *row) for row in map(_db_row, changes)))
        db.execute("COMMIT")

    def _next_seq(self, row: tuple[Any, ...]) -> int:
        # started_at, else finished_at (the moment of a skip or miss), else now.
        recorded = row[6] if row[6] is not None else row[7]
        if recorded is None:
            recorded = _us(self._clock())
        self._last_seq = max(recorded, self._last_seq + 1)
        return self._last_seq

    def _rollback(self) -> None:
        db = self._writer
        if db is not None and db.in_transaction:
            try:
                db.execute("ROLLBACK")
            except sqlite3.Error:
                logger.exception("run_store_rollback_failed")

    def _write_failed(self, count: int, exc: Exception) -> None:
        self._dropped_unwritten += count
        if self._write_problem is None:
            # Once per spell of failures (a full disk fails every batch until freed).
            logger.error(
                "run_store_write_failed", file=str(self._path), dropped=count, error=str(exc)
            )
        self._write_problem = f"{self._path.name}: run changes could not be saved ({exc})"

    # -- pruning, on the writer thread -----------------------------------------------------

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

    def _prune_steps(self, task: _Prune) -> Generator[None, None, None]:
        """One small transaction per step; the writer serves queued changes in between."""
        db = self._writer
        assert db is not None
        if task.max_age is not None:
            cutoff = _us(self._clock() - task.max_age)
            while True:
                deleted = self._delete(_DELETE_OLD, (cutoff, PRUNE_BATCH_SIZE))
                task.deleted += deleted
                yield
                if deleted < PRUNE_BATCH_SIZE:
                    break
        for (job_id,) in db.execute(_JOB_IDS).fetchall():
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
        db = self._writer
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
