"""`list_jobs()` is kept between changes and never shows a stale job: every change is seen."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.support.fakes import GatedJob, RunWatcher, fail, succeed
from vintagestory_api.scheduler.schemas import JobInfo
from vintagestory_api.scheduler.service import SchedulerService


@pytest.fixture
def watcher() -> RunWatcher:
    return RunWatcher()


@pytest.fixture
async def scheduler(watcher: RunWatcher) -> AsyncIterator[SchedulerService]:
    service = SchedulerService(default_timezone=ZoneInfo("UTC"), shutdown_grace_seconds=2)
    service.add_run_listener(watcher)
    await service.start()
    yield service
    await service.shutdown()


def listed(scheduler: SchedulerService, job_id: str) -> JobInfo:
    """The job as `list_jobs()` shows it, checked against a freshly built `get_job()`."""
    jobs = {job.id: job for job in scheduler.list_jobs()}
    fresh = {
        job_id: JobInfo(**scheduler.get_job(job_id).model_dump(exclude={"next_run_times"}))
        for job_id in jobs
    }
    assert jobs == fresh
    return jobs[job_id]


async def test_unchanged_jobs_are_listed_from_the_kept_list(scheduler: SchedulerService) -> None:
    scheduler.add_interval_job(succeed, 3600, "a")
    scheduler.add_interval_job(succeed, 3600, "b")

    first, second = scheduler.list_jobs(), scheduler.list_jobs()

    assert first == second
    assert all(x is y for x, y in zip(first, second, strict=True))
    # Each caller gets a list of its own.
    first.clear()
    assert [job.id for job in scheduler.list_jobs()] == ["a", "b"]


async def test_state_version_is_unchanged_while_nothing_happens(
    scheduler: SchedulerService,
) -> None:
    scheduler.add_interval_job(succeed, 3600, "a")
    version = scheduler.state_version
    scheduler.list_jobs()
    scheduler.get_job("a")
    scheduler.get_runs("a")
    scheduler.health()
    assert scheduler.state_version == version


async def test_added_and_removed_jobs_are_listed_at_once(scheduler: SchedulerService) -> None:
    scheduler.add_interval_job(succeed, 3600, "a")
    assert [job.id for job in scheduler.list_jobs()] == ["a"]

    scheduler.add_cron_job(succeed, "0 3 * * *", "b")
    assert [job.id for job in scheduler.list_jobs()] == ["a", "b"]

    scheduler.remove_job("a")
    assert [job.id for job in scheduler.list_jobs()] == ["b"]


async def test_pause_and_resume_are_listed_at_once(scheduler: SchedulerService) -> None:
    scheduler.add_interval_job(succeed, 3600, "a")
    assert listed(scheduler, "a").next_run_time is not None

    scheduler.pause_job("a")
    paused = listed(scheduler, "a")
    assert paused.paused
    assert paused.next_run_time is None

    scheduler.resume_job("a")
    resumed = listed(scheduler, "a")
    assert not resumed.paused
    assert resumed.next_run_time is not None


async def test_reschedule_is_listed_at_once(scheduler: SchedulerService) -> None:
    scheduler.add_interval_job(succeed, 3600, "a")
    before = listed(scheduler, "a")

    scheduler.reschedule("a", cron="0 3 * * *", timezone="Europe/Berlin")

    after = listed(scheduler, "a")
    assert after.trigger_type == "cron"
    assert after.timezone == "Europe/Berlin"
    assert after.next_run_time != before.next_run_time


async def test_default_timeout_change_is_listed_at_once(scheduler: SchedulerService) -> None:
    scheduler.add_interval_job(succeed, 3600, "a")
    assert listed(scheduler, "a").timeout_seconds == 300

    scheduler.set_default_timeout(12)
    assert listed(scheduler, "a").timeout_seconds == 12

    scheduler.set_default_timeout(None)
    assert listed(scheduler, "a").timeout_seconds is None


async def test_history_resize_counts_as_a_change(scheduler: SchedulerService) -> None:
    scheduler.add_interval_job(succeed, 3600, "a")
    version = scheduler.state_version

    scheduler.set_history_size(3)

    assert scheduler.state_version > version
    listed(scheduler, "a")


async def test_a_run_is_listed_running_from_its_start_to_its_end(
    scheduler: SchedulerService, watcher: RunWatcher
) -> None:
    gate = GatedJob()
    scheduler.add_interval_job(gate.run, 3600, "gated")
    assert not listed(scheduler, "gated").running

    run = scheduler.run_now("gated")
    running = listed(scheduler, "gated")
    assert running.running
    assert running.last_run is not None
    assert running.last_run.run_id == run.run_id
    assert running.last_run.outcome == "running"

    gate.release.set()
    await watcher.wait_outcome("gated", "succeeded")

    done = listed(scheduler, "gated")
    assert not done.running
    assert done.last_run is not None
    assert done.last_run.outcome == "succeeded"
    assert done.counts.succeeded == 1


async def test_a_failed_run_is_listed_with_its_counts(
    scheduler: SchedulerService, watcher: RunWatcher
) -> None:
    scheduler.add_interval_job(fail, 3600, "flaky")
    listed(scheduler, "flaky")

    scheduler.run_now("flaky")
    await watcher.wait_outcome("flaky", "failed")

    info = listed(scheduler, "flaky")
    assert info.counts.failed == 1
    assert info.last_run is not None
    assert info.last_run.error is not None


async def test_a_scheduled_fire_moves_the_listed_next_run_time(
    scheduler: SchedulerService, watcher: RunWatcher
) -> None:
    scheduler.add_interval_job(succeed, 1, "tick")
    before = listed(scheduler, "tick").next_run_time
    assert before is not None

    await watcher.wait_outcome("tick", "succeeded")

    after = listed(scheduler, "tick")
    assert after.next_run_time is not None
    assert after.next_run_time > before
    assert after.counts.succeeded >= 1


async def test_skipped_and_missed_fires_are_listed(
    scheduler: SchedulerService, watcher: RunWatcher
) -> None:
    gate = GatedJob()
    scheduler.add_interval_job(gate.run, 1, "gated")
    scheduler.run_now("gated")
    await watcher.wait_outcome("gated", "skipped")
    assert listed(scheduler, "gated").counts.skipped >= 1
    gate.release.set()
    await watcher.wait_outcome("gated", "succeeded")

    scheduler.add_interval_job(succeed, 3600, "late")
    listed(scheduler, "late")
    # As a suspended host would leave it: the next fire already long past; the job store
    # reports the change, so the list is built again.
    past = datetime.now(UTC) - timedelta(seconds=90)
    scheduler.set_next_run_time("late", past)
    assert listed(scheduler, "late").next_run_time == past
    await watcher.wait_outcome("late", "missed")

    late = listed(scheduler, "late")
    assert late.counts.missed == 1
    assert late.next_run_time is not None
    assert late.next_run_time > past


async def test_jobs_added_before_start_are_listed_with_their_first_fire_time() -> None:
    service = SchedulerService(default_timezone=ZoneInfo("UTC"))
    service.add_interval_job(succeed, 3600, "early")
    assert service.list_jobs()[0].next_run_time is None

    await service.start()
    try:
        assert listed(service, "early").next_run_time is not None
    finally:
        await service.shutdown()
