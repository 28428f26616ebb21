"""The run history's SQLite file: its schema, and opening it. Opening checks the file before
and after SQLite touches it (`PRAGMA quick_check`, our tables, our schema version), brings it
to the current schema, marks the runs a previous process left running as interrupted, sets a
damaged file aside under a `.corrupt-<timestamp>` name and starts a new one, and, when no
database can be had at all, says why so that the store can keep its runs in memory only.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import structlog

from .run_rows import (
    INTERRUPTED,
    INTERRUPTED_REASON,
    Clock,
    runs_from_rows,
    us,
)
from .schemas import JobRun

logger = structlog.get_logger()

SCHEMA_VERSION: Final = 1
BUSY_TIMEOUT_SECONDS: Final = 5.0

_SQLITE_HEADER: Final = b"SQLite format 3\x00"

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

_RUNNING: Final = (
    "SELECT run_id, job_id, trigger, outcome, scheduled_for, scheduled_offset, started_at, "
    "finished_at, duration_ms, lateness_ms, reason, error_type, error_message, result_json "
    "FROM runs WHERE outcome = 'running' ORDER BY seq"
)
_INTERRUPT: Final = (
    "UPDATE runs SET outcome = 'interrupted', reason = ?, finished_at = ?, duration_ms = NULL "
    "WHERE outcome = 'running'"
)
# Every job with stored runs: what reads of all jobs and pruning go through.
JOB_IDS: Final = "SELECT DISTINCT job_id FROM runs"


class _Problem(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Damaged(_Problem):
    """The file is unusable as it is: keep it aside and start a new one."""


class _Unusable(_Problem):
    """No database now, but nothing to set aside: run without persistence."""


@dataclass
class Opened:
    writer: sqlite3.Connection
    reader: sqlite3.Connection
    interrupted: list[JobRun]
    last_seq: int


@dataclass(frozen=True)
class Opening:
    """What `open_database` found: the database (None: keep runs in memory only), the problem
    to report until the next start, and where a damaged file was moved."""

    opened: Opened | None
    problem: str | None = None
    quarantined_to: Path | None = None


def open_database(path: Path, clock: Clock) -> Opening:
    """Open or create the database at `path`, setting a damaged file aside; never raises."""

    def without_database(reason: str) -> Opening:
        logger.error("run_store_unavailable", file=str(path), reason=reason)
        problem = f"{path.name}: {reason}; run history is kept in memory only until restart"
        return Opening(None, problem)

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return without_database(f"its directory cannot be created ({exc.strerror or exc})")
    try:
        opened = _open(path, clock)
    except _Unusable as exc:
        return without_database(exc.reason)
    except _Damaged as exc:
        damage = exc.reason
    else:
        logger.info("run_store_opened", file=str(path), interrupted=len(opened.interrupted))
        return Opening(opened)
    try:
        kept = _quarantine(path, clock())
    except OSError as exc:
        return without_database(f"{damage}; it could not be moved aside ({exc})")
    logger.error("run_store_corrupt", file=str(path), reason=damage, kept_as=str(kept))
    try:
        opened = _open(path, clock)
    except _Problem as exc:
        return without_database(
            f"{damage}; kept as {kept.name}; a new database could not be started: {exc}"
        )
    problem = f"{path.name}: {damage}; kept as {kept.name}; started a new, empty run history"
    return Opening(opened, problem, kept)


def close_quietly(*connections: sqlite3.Connection | None) -> None:
    for connection in connections:
        if connection is not None:
            try:
                connection.close()
            except sqlite3.Error:
                logger.exception("run_store_close_failed")


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
    finished = us(now)
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
    runs = runs_from_rows(
        [(*row[:3], INTERRUPTED, *row[4:7], finished, None, row[9], INTERRUPTED_REASON, *row[11:])
         for row in rows]
    )  # fmt: skip
    if runs:
        logger.warning(
            "run_store_runs_interrupted",
            runs=[{"job_id": run.job_id, "run_id": run.run_id} for run in runs],
        )
    return runs


def _open(path: Path, clock: Clock) -> Opened:
    """Open, check and prepare the database; raises `_Damaged` or `_Unusable`, nothing else."""
    try:
        return _try_open(path, clock)
    except _Problem:
        raise
    except Exception as exc:
        # Whatever went wrong, the API starts: without persistence, and saying why.
        logger.exception("run_store_open_failed", file=str(path))
        raise _Unusable(f"it could not be opened ({exc!r})") from exc


def _try_open(path: Path, clock: Clock) -> Opened:
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
        close_quietly(writer, reader)
        raise _classify(exc, path) from exc
    except BaseException:
        close_quietly(writer, reader)
        raise
    return Opened(writer, reader, interrupted, last_seq)


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
