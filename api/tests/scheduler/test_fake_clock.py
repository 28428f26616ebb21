"""The scheduler itself (not only the previews) across DST changes and restarts, with a fake
clock: time-machine moves the wall clock APScheduler and the service read, the event loop's
own clock keeps real time, and `wake()` makes the scheduler look at the moved clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine

from tests.support.fakes import RunWatcher, succeed
from vintagestory_api.scheduler.run_store import RunStore
from vintagestory_api.scheduler.schemas import JobRun
from vintagestory_api.scheduler.service import SchedulerService

BERLIN = ZoneInfo("Europe/Berlin")
HAVANA = ZoneInfo("America/Havana")
# How far before a fire time the clock is set: long enough to add a job, short enough to wait.
LEAD = timedelta(milliseconds=400)


@pytest.fixture
def traveller() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(datetime(2026, 1, 1, tzinfo=UTC), tick=True) as coordinates:
        yield coordinates


@pytest.fixture
async def scheduler(traveller: time_machine.Traveller) -> AsyncIterator[SchedulerService]:
    service = SchedulerService(default_timezone=UTC, shutdown_grace_seconds=1)
    await service.start()
    yield service
    await service.shutdown()


async def _fires(
    scheduler: SchedulerService,
    traveller: time_machine.Traveller,
    job_id: str,
    count: int,
) -> list[JobRun]:
    """Let the job fire `count` times, moving the clock to just before each next fire."""
    watcher = RunWatcher()
    scheduler.add_run_listener(watcher)
    for n in range(1, count + 1):
        due = scheduler.get_job(job_id).next_run_time
        assert due is not None
        # In UTC: arithmetic on an aware local time is wall-clock arithmetic, wrong across DST.
        traveller.move_to(due.astimezone(UTC) - LEAD)
        scheduler.wake()
        await watcher.wait_outcome(job_id, "succeeded", count=n)
    return [run for run in watcher.runs if run.job_id == job_id]


async def test_a_berlin_midnight_job_fires_on_29_30_and_31_march(
    scheduler: SchedulerService, traveller: time_machine.Traveller
) -> None:
    traveller.move_to(datetime(2026, 3, 28, 12, 0, 30, tzinfo=BERLIN))
    scheduler.add_cron_job(succeed, "0 0 * * *", "midnight", timezone="Europe/Berlin")

    runs = await _fires(scheduler, traveller, "midnight", 3)

    fired = [run.scheduled_for.astimezone(BERLIN) for run in runs if run.scheduled_for]
    assert [(t.month, t.day, t.hour, t.minute) for t in fired] == [
        (3, 29, 0, 0),
        (3, 30, 0, 0),
        (3, 31, 0, 0),
    ]


async def test_a_havana_0030_job_fires_on_7_8_and_9_march_the_8th_right_after_the_change(
    scheduler: SchedulerService, traveller: time_machine.Traveller
) -> None:
    traveller.move_to(datetime(2026, 3, 6, 12, tzinfo=HAVANA))
    scheduler.add_cron_job(succeed, "30 0 * * *", "early", timezone="America/Havana")

    runs = await _fires(scheduler, traveller, "early", 3)

    fired = [run.scheduled_for.astimezone(HAVANA) for run in runs if run.scheduled_for]
    # 00:30 does not exist on 8 March (00:00 becomes 01:00): cron runs it right after.
    assert [t.isoformat() for t in fired] == [
        "2026-03-07T00:30:00-05:00",
        "2026-03-08T01:00:00-04:00",
        "2026-03-09T00:30:00-04:00",
    ]


async def _run_once_and_stop(store_path: Path, traveller: time_machine.Traveller) -> datetime:
    """A first API life: a 4 h job runs once, now; returns when it was due."""
    service = SchedulerService(
        default_timezone=UTC, shutdown_grace_seconds=1, run_store=RunStore.open(store_path)
    )
    await service.start()
    watcher = RunWatcher()
    service.add_run_listener(watcher)
    service.add_interval_job(succeed, 4 * 3600, "every4h")
    due = datetime.now(UTC)
    service.set_next_run_time("every4h", due)
    await watcher.wait_outcome("every4h", "succeeded")
    await service.shutdown()
    store = service.run_store
    assert store is not None
    store.close()
    return due


async def test_an_interval_job_keeps_its_phase_across_a_restart(
    tmp_path: Path, traveller: time_machine.Traveller
) -> None:
    store_path = tmp_path / "runs.db"
    last = await _run_once_and_stop(store_path, traveller)

    traveller.move_to(last + timedelta(hours=3))
    service = SchedulerService(
        default_timezone=UTC, shutdown_grace_seconds=1, run_store=RunStore.open(store_path)
    )
    await service.start()
    try:
        info = service.add_interval_job(succeed, 4 * 3600, "every4h")
        # Ran 3 h before the restart: the next run is 1 h after it, not 4 h.
        assert info.next_run_time == last + timedelta(hours=4)
    finally:
        await service.shutdown()


async def test_a_run_that_fell_due_while_down_runs_once_as_a_catch_up(
    tmp_path: Path, traveller: time_machine.Traveller
) -> None:
    store_path = tmp_path / "runs.db"
    last = await _run_once_and_stop(store_path, traveller)

    # Down for 5 hours: one run was due at last + 4 h.
    traveller.move_to(last + timedelta(hours=5))
    service = SchedulerService(
        default_timezone=UTC, shutdown_grace_seconds=1, run_store=RunStore.open(store_path)
    )
    await service.start()
    watcher = RunWatcher()
    service.add_run_listener(watcher)
    try:
        service.add_interval_job(succeed, 4 * 3600, "every4h")
        [caught_up] = await watcher.wait_outcome("every4h", "succeeded")
        assert caught_up.trigger == "catch_up"
        assert caught_up.scheduled_for == last + timedelta(hours=4)
        nxt = service.get_job("every4h").next_run_time
        assert nxt is not None
        assert nxt > datetime.now(UTC) + timedelta(hours=3)
        assert [r.trigger for r in service.get_runs("every4h")] == ["catch_up", "schedule"]
    finally:
        await service.shutdown()
