"""RunStore against real SQLite files: write-behind, restarts, paging, retention and damage."""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args
from zoneinfo import ZoneInfo

import pytest
from structlog.testing import capture_logs

from vintagestory_api.scheduler.run_store import (
    INTERRUPTED_REASON,
    STORED_OUTCOMES,
    RunStore,
    RunStoreClosed,
    UnknownRun,
)
from vintagestory_api.scheduler.schemas import JobRun, RunError, RunOutcome

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
# Long enough that nothing is committed by the interval while a test looks: what is on disk
# then got there through flush() or close().
NEVER = 3600.0
QUARANTINE_NAME = re.compile(r"runs\.db\.corrupt-\d{8}T\d{12}Z(-\d+)?")


def finished_run(
    n: int, job_id: str = "backup", outcome: RunOutcome = "succeeded", **fields: Any
) -> JobRun:
    started = T0 + timedelta(minutes=n)
    values: dict[str, Any] = {
        "run_id": f"{job_id}-{n:06d}",
        "job_id": job_id,
        "trigger": "schedule",
        "outcome": outcome,
        "scheduled_for": started,
        "started_at": started,
        "finished_at": started + timedelta(seconds=2),
        "duration_ms": 2000,
        "lateness_ms": 0,
    }
    values.update(fields)
    return JobRun(**values)


def running_run(n: int, job_id: str = "backup") -> JobRun:
    return finished_run(n, job_id, "running", finished_at=None, duration_ms=None)


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll until `condition` holds; returns the seconds it took, fails after `timeout`."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            pytest.fail(f"not within {timeout} s: {what}")
        time.sleep(0.005)
    return time.monotonic() - start


def stored_outcome(path: Path, run_id: str) -> str | None:
    """The outcome another connection sees committed, as a separate process would."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        row = db.execute("SELECT outcome FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    return None if row is None else str(row[0])


def ids(runs: list[JobRun]) -> list[str]:
    return [run.run_id for run in runs]


class FixedClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "state" / "runs.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[RunStore]:
    with RunStore.open(db_path) as opened:
        yield opened


def test_stored_outcomes_are_the_models_plus_interrupted() -> None:
    assert set(get_args(RunOutcome)) | {"interrupted"} == STORED_OUTCOMES


def test_every_field_survives_a_restart(db_path: Path) -> None:
    berlin = datetime(2026, 7, 1, 4, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    started = datetime(2026, 7, 1, 2, 0, 0, 123457, tzinfo=UTC)
    run = JobRun(
        run_id="a" * 32,
        job_id="backup",
        trigger="schedule",
        outcome="running",
        scheduled_for=berlin,
        started_at=started,
        lateness_ms=-3,
    )
    skipped = JobRun(
        run_id="b" * 32,
        job_id="backup",
        trigger="schedule",
        outcome="skipped",
        scheduled_for=berlin + timedelta(hours=1),
        finished_at=datetime(2026, 7, 1, 3, 0, 0, 1, tzinfo=UTC),
        lateness_ms=1,
        reason="the schedule run aaaa was still running",
    )
    manual = finished_run(1, "restart", trigger="manual", scheduled_for=None, lateness_ms=None)
    with RunStore.open(db_path, commit_interval=NEVER) as store:
        store.record(run)
        # What the runner does when a run ends: fields assigned, then the end recorded.
        run.outcome = "failed"
        run.finished_at = started + timedelta(milliseconds=1500)
        run.duration_ms = 1500
        run.reason = "grüße, ☃"
        run.error = RunError(type="OSError", message="no such file: caf\udce9")
        run.result = {"files": [1, 2.5, None, True], "note": "ünïcode", "nested": {"x": {}}}
        store.finish(run)
        store.record(skipped)
        store.record(manual)

    with RunStore.open(db_path) as reopened:
        recent = reopened.load_recent(10)
    assert reopened.health.status == "ok"
    stored_skip, stored_run = recent["backup"]
    # The one lossy field: a lone surrogate cannot be stored in UTF-8 and becomes "?".
    assert stored_run.error == RunError(type="OSError", message="no such file: caf?")
    assert stored_run == run.model_copy(update={"error": stored_run.error})
    assert stored_skip == skipped
    assert recent["restart"] == [manual]
    # Fire times keep the offset of the job's timezone they were given in.
    assert stored_run.scheduled_for is not None
    assert stored_run.scheduled_for.isoformat() == "2026-07-01T04:00:00+02:00"
    assert stored_run.started_at == started


def test_start_and_end_are_each_committed_within_a_second(store: RunStore, db_path: Path) -> None:
    run = running_run(1)
    store.record(run)
    wait_until(lambda: stored_outcome(db_path, run.run_id) == "running", 1.0, "start committed")
    run.outcome = "succeeded"
    run.finished_at = T0
    store.finish(run)
    wait_until(lambda: stored_outcome(db_path, run.run_id) == "succeeded", 1.0, "end committed")
    wait_until(lambda: store.pending_count == 0, 1.0, "nothing pending")


def test_a_change_is_snapshotted_when_enqueued_and_counted_once(db_path: Path) -> None:
    with RunStore.open(db_path, commit_interval=NEVER) as store:
        run = running_run(1)
        store.record(run)
        run.outcome = "succeeded"
        assert store.pending_count == 1
        assert store.flush()
        assert store.pending_count == 0
        assert ids(store.page("backup", outcome="running")) == [run.run_id]

        store.finish(run)
        store.finish(run)
        skipped = finished_run(2, outcome="skipped", started_at=None, duration_ms=None)
        store.record(skipped)
        store.record(skipped)
        # A finished run is final: a later, different end for it is ignored.
        store.finish(run.model_copy(update={"outcome": "failed"}))
        assert [r.outcome for r in store.page("backup")] == ["skipped", "succeeded"]
        assert store.counts() == {"backup": {"skipped": 1, "succeeded": 1}}


def test_close_writes_what_is_still_pending(db_path: Path) -> None:
    store = RunStore.open(db_path, commit_interval=NEVER)
    for n in range(200):
        store.record(finished_run(n, outcome="failed" if n % 4 == 0 else "succeeded"))
    assert store.close()
    assert store.pending_count == 0
    # The writer closed last, taking the WAL back into the database file.
    assert not db_path.with_name("runs.db-wal").exists()
    with RunStore.open(db_path) as reopened:
        assert len(reopened.page("backup", limit=1000)) == 200
        assert reopened.counts() == {"backup": {"failed": 50, "succeeded": 150}}


def test_a_run_still_running_at_close_is_interrupted_when_reopened(db_path: Path) -> None:
    with RunStore.open(db_path) as store:
        store.record(running_run(1))
    found = T0 + timedelta(hours=5)
    with RunStore.open(db_path, clock=FixedClock(found)) as reopened:
        [run] = reopened.interrupted
        assert (run.outcome, run.reason, run.finished_at) == (
            "interrupted",
            INTERRUPTED_REASON,
            found,
        )
        assert run.duration_ms is None
        assert reopened.page("backup") == [run]
        assert reopened.counts() == {"backup": {"interrupted": 1}}


CHILD = """
import sys
from datetime import UTC, datetime
from pathlib import Path

from vintagestory_api.scheduler.schemas import JobRun
from vintagestory_api.scheduler.run_store import RunStore

store = RunStore.open(Path(sys.argv[1]))
now = datetime.now(UTC)
for run_id, outcome in (("done", "succeeded"), ("cut-off", "running")):
    store.record(JobRun(run_id=run_id, job_id="backup", trigger="schedule", outcome=outcome,
                        started_at=now, finished_at=None if outcome == "running" else now))
assert store.flush(10)
print("recorded", flush=True)
sys.stdin.read()  # until killed
"""


def test_a_run_of_a_killed_process_is_interrupted_and_counted(db_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        deadline = time.monotonic() + 30
        seen = b""
        # Its log lines come first, on the same stream. Read the pipe itself: a buffered
        # readline could hold "recorded" back while select() reports nothing more to read.
        fd = child.stdout.fileno()
        while b"recorded\n" not in seen:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(left, 0))
            assert ready, "the child did not record its runs in time"
            chunk = os.read(fd, 65536)
            assert chunk, "the child ended before recording its runs"
            seen += chunk
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                stream.close()
    # Killed: no checkpoint, the committed changes are only in the WAL.
    assert db_path.with_name("runs.db-wal").exists()

    with RunStore.open(db_path) as store:
        assert ids(store.interrupted) == ["cut-off"]
        assert [(r.run_id, r.outcome) for r in store.page("backup")] == [
            ("cut-off", "interrupted"),
            ("done", "succeeded"),
        ]
        assert store.counts() == {"backup": {"interrupted": 1, "succeeded": 1}}
    with RunStore.open(db_path) as again:
        assert again.interrupted == []
        assert again.counts() == {"backup": {"interrupted": 1, "succeeded": 1}}


def test_pages_go_back_by_run_id_or_time_and_filter_by_outcome(store: RunStore) -> None:
    runs = []
    for n in range(12):
        outcome: RunOutcome = "failed" if n % 3 == 0 else "succeeded"
        runs.append(finished_run(n, "backup", outcome))
        store.record(runs[-1])
        if n % 4 == 0:
            store.record(finished_run(n, "other"))
        if n == 6:
            # Never started: placed by when it was skipped, between runs 6 and 7.
            skip_at = T0 + timedelta(minutes=6, seconds=30)
            runs.append(
                finished_run(
                    6, "backup", "skipped", run_id="skip", started_at=None, finished_at=skip_at
                )
            )
            store.record(runs[-1])
    newest_first = ids(runs[::-1])

    def older_than(run_id: str) -> list[str]:
        return newest_first[newest_first.index(run_id) + 1 :]

    assert ids(store.page("backup", limit=3)) == newest_first[:3]
    assert ids(store.page("backup", limit=100, before="backup-000007")) == older_than(
        "backup-000007"
    )
    assert ids(store.page("backup", limit=2, before="skip")) == ["backup-000006", "backup-000005"]
    at_5 = T0 + timedelta(minutes=5)
    # Runs that started before 12:05: run 5 started then, not before.
    assert ids(store.page("backup", limit=100, before=at_5)) == older_than("backup-000005")
    naive = at_5.replace(tzinfo=None)
    assert ids(store.page("backup", limit=100, before=naive)) == older_than("backup-000005")
    just_after_skip = T0 + timedelta(minutes=6, seconds=31)
    assert ids(store.page("backup", limit=1, before=just_after_skip)) == ["skip"]
    failed = ["backup-000009", "backup-000006", "backup-000003", "backup-000000"]
    assert ids(store.page("backup", outcome="failed")) == failed
    assert ids(store.page("backup", outcome="failed", before="backup-000006")) == failed[2:]
    assert ids(store.page("backup", outcome="skipped", before=at_5)) == []

    walked: list[str] = []
    before: str | None = None
    while page := store.page("backup", limit=5, before=before):
        walked += ids(page)
        before = page[-1].run_id
    assert walked == newest_first

    with pytest.raises(UnknownRun):
        store.page("backup", before="other-000000")
    with pytest.raises(UnknownRun):
        store.page("backup", before="no-such-run")
    with pytest.raises(ValueError, match="outcome"):
        store.page("backup", outcome="exploded")
    with pytest.raises(ValueError, match="limit"):
        store.page("backup", limit=0)
    assert store.page("never-ran") == []


def test_removed_jobs_stay_known(db_path: Path) -> None:
    with RunStore.open(db_path, clock=FixedClock(T0 + timedelta(days=1))) as store:
        store.record(finished_run(1, "old-job"))
        assert store.knows("old-job")
        assert not store.knows("never-ran")
        assert store.job_ids() == {"old-job"}
        assert store.prune(1, max_age=timedelta(hours=1)).result(timeout=10) == 1
        assert store.page("old-job") == []
        # Its counts remain, so the job is still known.
        assert store.knows("old-job")
        assert store.job_ids() == {"old-job"}


def test_retention_keeps_the_newest_per_job_and_never_a_running_run(store: RunStore) -> None:
    store.record(running_run(0, "backup"))
    for n in range(1, 10):
        store.record(finished_run(n, "backup"))
    for n in range(5):
        store.record(finished_run(n, "restart", "failed"))
    before = store.counts()

    assert store.prune(keep_per_job=3).result(timeout=10) == 6 + 2
    assert ids(store.page("backup", limit=100)) == [
        "backup-000009",
        "backup-000008",
        "backup-000007",
        "backup-000000",
    ]
    assert ids(store.page("restart", limit=100)) == [
        "restart-000004",
        "restart-000003",
        "restart-000002",
    ]
    assert store.counts() == before == {"backup": {"succeeded": 9}, "restart": {"failed": 5}}


def test_retention_by_age_keeps_recent_and_running_runs(db_path: Path) -> None:
    now = T0 + timedelta(days=40)
    with RunStore.open(db_path, clock=FixedClock(now)) as store:
        store.record(running_run(0))
        for n in range(1, 6):
            store.record(finished_run(n))
        recent = []
        for n in range(6, 9):
            at = now - timedelta(days=1) + timedelta(minutes=n)
            recent.append(finished_run(n, started_at=at, finished_at=at + timedelta(seconds=1)))
        for run in recent:
            store.record(run)

        assert store.prune(keep_per_job=100, max_age=timedelta(days=30)).result(timeout=10) == 5
        assert ids(store.page("backup")) == [*ids(recent[::-1]), "backup-000000"]
        assert store.counts() == {"backup": {"succeeded": 8}}
    with RunStore.open(db_path, clock=FixedClock(now)) as reopened:
        # The running run was left by "the previous process": interrupted, and counted.
        assert reopened.counts() == {"backup": {"succeeded": 8, "interrupted": 1}}


def status(store: RunStore) -> str:
    return store.health.status


def test_a_value_sqlite_cannot_hold_costs_only_its_own_change(db_path: Path) -> None:
    huge = finished_run(2, duration_ms=10**30)
    with RunStore.open(db_path, commit_interval=NEVER) as store:
        store.record(finished_run(1))
        store.record(huge)
        store.record(finished_run(3))
        assert store.flush()
        assert ids(store.page("backup")) == ["backup-000003", "backup-000001"]
        assert store.dropped_count == 1
        # A later successful commit ends the degraded state; a failing one starts it.
        assert status(store) == "ok"
        store.record(huge)
        assert store.flush()
        assert status(store) == "degraded"
        assert "could not be saved" in (store.health.reason or "")
        store.record(finished_run(4))
        assert store.flush()
        assert status(store) == "ok"


def test_many_runs_are_paged_through_an_index(db_path: Path) -> None:
    template = finished_run(0, "busy")
    started = time.monotonic()
    with RunStore.open(db_path) as store:
        for n in range(99_950):
            at = T0 + timedelta(seconds=n)
            store.record(template.model_copy(update={"run_id": f"busy-{n}", "started_at": at}))
        for n in range(50):
            outcome: RunOutcome = "failed" if n % 2 else "succeeded"
            store.record(finished_run(n, "quiet", outcome))
        assert store.flush(timeout=120)
        elapsed = time.monotonic() - started
        assert elapsed < 60, f"100,000 runs took {elapsed:.1f} s"

        page = store.page("busy", limit=50)
        assert ids(page) == [f"busy-{n}" for n in range(99_949, 99_899, -1)]
        assert len(store.page("quiet", limit=50, outcome="failed")) == 25
        plans = [
            store.query_plan(),
            store.query_plan(outcome="failed"),
            store.query_plan(before_run=True),
            store.query_plan(outcome="succeeded", before_run=True),
        ]
        for plan in plans:
            assert plan, "no plan"
            for step in plan:
                assert "USING INDEX" in step or "USING COVERING INDEX" in step, plan
                assert "TEMP B-TREE" not in step, plan
        assert "runs_by_job_outcome" in plans[1][-1]

        assert store.prune(keep_per_job=50).result(timeout=60) == 99_900
        assert ids(store.page("busy", limit=50)) == ids(page)
        assert store.counts() == {
            "busy": {"succeeded": 99_950},
            "quiet": {"failed": 25, "succeeded": 25},
        }


def make_garbage(path: Path) -> None:
    path.write_bytes(b"not a database, just some bytes\n" * 100)


def make_truncated(path: Path) -> None:
    with RunStore.open(path) as store:
        for n in range(3000):
            store.record(finished_run(n, result={"padding": "x" * 100}))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def make_directory(path: Path) -> None:
    path.mkdir(parents=True)
    (path / "something").write_text("kept")


def make_foreign(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE notes (body TEXT)")
        db.commit()


def permissions_enforced(directory: Path) -> bool:
    """False for root (or a process with CAP_DAC_OVERRIDE), which reads and writes anything."""
    probe = directory / "permission-probe"
    probe.write_text("x")
    probe.chmod(0)
    try:
        probe.read_text()
    except PermissionError:
        return True
    finally:
        probe.unlink()
    return False


def make_unreadable(path: Path) -> None:
    if not permissions_enforced(path.parent):
        pytest.skip("this process reads files of any mode (root)")
    make_foreign(path)
    path.chmod(0)


@pytest.mark.parametrize(
    "damage",
    [make_garbage, make_truncated, make_directory, make_foreign, make_unreadable],
    ids=["garbage", "truncated", "directory", "foreign-tables", "unreadable"],
)
def test_a_damaged_database_is_kept_aside_and_a_new_one_started(
    db_path: Path, damage: Callable[[Path], None]
) -> None:
    db_path.parent.mkdir(parents=True)
    damage(db_path)
    mode = os.lstat(db_path).st_mode
    size = os.lstat(db_path).st_size
    with RunStore.open(db_path) as store:
        kept = store.quarantined_to
        assert kept is not None
        assert QUARANTINE_NAME.fullmatch(kept.name)
        assert stat.S_IFMT(os.lstat(kept).st_mode) == stat.S_IFMT(mode)
        assert os.lstat(kept).st_size == size
        assert store.persistent
        assert store.health.status == "degraded"
        assert f"kept as {kept.name}" in (store.health.reason or "")
        assert store.load_recent(10) == {}
        store.record(finished_run(1))
        assert ids(store.page("backup")) == ["backup-000001"]
    with RunStore.open(db_path) as reopened:
        assert reopened.health.status == "ok"
        assert ids(reopened.page("backup")) == ["backup-000001"]


def test_quarantine_takes_the_wal_along_and_never_overwrites(db_path: Path) -> None:
    clock = FixedClock(T0)
    db_path.parent.mkdir(parents=True)
    kept: list[Path] = []
    for attempt in range(2):
        for store_file in list(db_path.parent.iterdir()):
            if not store_file.name.startswith("runs.db.corrupt-"):
                store_file.unlink()
        make_garbage(db_path)
        db_path.with_name("runs.db-wal").write_bytes(b"wal %d" % attempt)
        with RunStore.open(db_path, clock=clock) as store:
            assert store.quarantined_to is not None
            kept.append(store.quarantined_to)
    assert kept[0].name == "runs.db.corrupt-20260301T120000000000Z"
    assert kept[1].name == "runs.db.corrupt-20260301T120000000000Z-1"
    for attempt, main in enumerate(kept):
        assert main.with_name(main.name + "-wal").read_bytes() == b"wal %d" % attempt


def test_a_newer_schema_is_left_alone_and_nothing_is_stored(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        db.execute("CREATE TABLE runs (future TEXT)")
        db.execute("PRAGMA user_version = 99")
        db.commit()
    original = db_path.read_bytes()
    with capture_logs() as logs, RunStore.open(db_path) as store:
        assert not store.persistent
        assert store.health.status == "degraded"
        assert "newer" in (store.health.reason or "")
        store.record(finished_run(1))
        store.record(finished_run(2))
        assert store.flush()
        assert store.page("backup") == []
        assert store.dropped_count == 2
    assert db_path.read_bytes() == original
    assert sorted(p.name for p in db_path.parent.iterdir()) == ["runs.db"]
    assert [e["event"] for e in logs if e["log_level"] == "error"] == [
        "run_store_unavailable",
        "run_store_write_dropped",
    ]


def test_a_state_dir_that_cannot_be_created_means_memory_only(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("a file where the data directory should be")
    with RunStore.open(tmp_path / "data" / "state" / "runs.db") as store:
        assert not store.persistent
        assert store.health.status == "degraded"
        assert "memory only" in (store.health.reason or "")
        store.record(finished_run(1))
        assert store.counts() == {}
        assert store.prune(5).result(timeout=1) == 0


def test_a_read_only_state_dir_means_memory_only(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    if not permissions_enforced(db_path.parent):
        pytest.skip("this process writes into read-only directories (root)")
    db_path.parent.chmod(0o555)
    try:
        with RunStore.open(db_path) as store:
            assert not store.persistent
            assert store.health.status == "degraded"
            store.record(finished_run(1))
            assert store.page("backup") == []
    finally:
        db_path.parent.chmod(0o755)


def test_after_close_changes_are_dropped_and_reads_refused(db_path: Path) -> None:
    store = RunStore.open(db_path)
    assert store.close()
    assert store.close()
    store.record(finished_run(1))
    assert store.dropped_count == 1
    assert store.flush()
    with pytest.raises(RunStoreClosed):
        store.page("backup")
