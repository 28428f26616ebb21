"""SchedulerService: jobs fire, every run is recorded, run-now and steering keep the schedule."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from structlog.testing import capture_logs

from tests.support.fakes import GatedJob, RunWatcher, fail, sleep_for, succeed, wait_until
from vintagestory_api.scheduler.errors import (
    InvalidSchedule,
    JobAlreadyExists,
    JobAlreadyRunning,
    JobNotFound,
    JobNotResumable,
    SchedulerNotRunning,
)
from vintagestory_api.scheduler.service import SchedulerService

UTC_ZONE = ZoneInfo("UTC")


@pytest.fixture
def watcher() -> RunWatcher:
    return RunWatcher()


@pytest.fixture
async def scheduler(watcher: RunWatcher) -> AsyncIterator[SchedulerService]:
    service = SchedulerService(default_timezone=UTC_ZONE, shutdown_grace_seconds=2)
    service.add_run_listener(watcher)
    await service.start()
    yield service
    await service.shutdown()


async def test_interval_job_fires_and_records_a_succeeded_run(
    scheduler: SchedulerService, watcher: RunWatcher
) -> None:
    info = scheduler.add_interval_job(succeed, 1, "tick", description="ticks")
    assert info.trigger_type == "interval"
    assert info.trigger_details == "every second"
    assert info.next_run_time is not None
    assert info.next_run_time.utcoffset() is not None

    [run] = await watcher.wait_outcome("tick", "succeeded")

    assert run.trigger == "schedule"
    assert run.result == {"ok": True}
    assert run.scheduled_for is not None
    assert run.started_at is not None
    assert run.lateness_ms is not None
    assert run.lateness_ms >= 0
    assert run.duration_ms is not None
    assert scheduler.get_job("tick").counts.succeeded >= 1


async def test_cron_job_fires_on_its_trigger(
    scheduler: SchedulerService, watcher: RunWatcher
) -> None:
    scheduler.add_cron_job(succeed, "* * * * *", "minutely", timezone="Europe/Berlin")
    # Cron's resolution is a minute; rather than wait for the next one, bring only this
    # occurrence forward, so the fire still goes through the scheduler's own path.
    scheduler.set_next_run_time("minutely", datetime.now(UTC))

    [run] = await watcher.wait_outcome("minutely", "succeeded")

    assert run.trigger == "schedule"
    after = scheduler.get_job("minutely").next_run_time
    assert after is not None
    assert after.second == 0
    assert after > datetime.now(UTC)
    assert str(after.tzinfo) == "Europe/Berlin"


async def test_failing_job_is_recorded_failed_and_fires_again(
    scheduler: SchedulerService, watcher: RunWatcher
) -> None:
    scheduler.add_interval_job(fail, 1, "flaky")

    failed = await watcher.wait_outcome("flaky", "failed", count=2)

    assert failed[0].error is not None
    assert failed[0].error.type == "RuntimeError"
    assert failed[0].error.message == "the upstream API said no"
    info = scheduler.get_job("flaky")
    assert info.counts.failed >= 2
    assert not info.paused
    assert info.next_run_time is not None


async def test_job_exceeding_its_timeout_is_timed_out_and_the_next_run_still_happens(
    scheduler: SchedulerService, watcher: RunWatcher
) -> None:
    scheduler.add_interval_job(sleep_for, 1, "slow", args=(30,), timeout_seconds=0.2)

    runs = await watcher.wait_outcome("slow", "timed_out", count=2)

    assert runs[0].reason == "exceeded its timeout of 0.2 s"
    assert runs[0].error is not None
    assert runs[0].error.type == "TimeoutError"
    assert scheduler.get_job("slow").timeout_seconds == 0.2


async def test_a_timeout_error_raised_by_the_job_itself_is_a_failure(
    scheduler: SchedulerService, watcher: RunWatcher
) -> None:
    async def upstream_timeout() -> None:
        raise TimeoutError("upstream read timed out")

    scheduler.add_interval_job(upstream_timeout, 3600, "upstream")
    scheduler.run_now("upstream")

    [run] = await watcher.wait_outcome("upstream", "failed")
    assert run.error is not None
    assert run.error.message == "upstream read timed out"


async def test_run_now_on_a_running_job_is_refused(scheduler: SchedulerService) -> None:
    gate = GatedJob()
    scheduler.add_interval_job(gate.run, 3600, "gated")
    run = scheduler.run_now("gated")
    assert run.outcome == "running"
    assert run.trigger == "manual"
    await gate.started.wait()

    with pytest.raises(JobAlreadyRunning):
        scheduler.run_now("gated")
    assert scheduler.get_job("gated").running

    gate.release.set()
    await wait_until(lambda: not scheduler.get_job("gated").running)
    assert [r.outcome for r in scheduler.get_runs("gated")] == ["succeeded"]


async def test_twenty_concurrent_run_now_calls_start_exactly_one_run(
    scheduler: SchedulerService, watcher: RunWatcher
) -> None:
    gate = GatedJob()
    scheduler.add_interval_job(gate.run, 3600, "gated")

    async def try_run() -> str:
        await asyncio.sleep(0)
        try:
            scheduler.run_now("gated")
        except JobAlreadyRunning:
            return "conflict"
        return "started"

    results = await asyncio.gather(*(try_run() for _ in range(20)))
    await gate.started.wait()
    gate.release.set()
    await watcher.wait_outcome("gated", "succeeded")

    assert results.count("started") == 1
    assert results.count("conflict") == 19
    assert gate.calls == 1
    assert gate.max_active == 1


async def test_scheduled_fire_during_a_manual_run_is_recorded_skipped(
    scheduler: SchedulerService, watcher: RunWatcher
) -> None:
    gate = GatedJob()
    scheduler.add_interval_job(gate.run, 1, "gated")
    scheduler.run_now("gated")

    [skipped] = await watcher.wait_outcome("gated", "skipped")
    gate.release.set()

    assert skipped.trigger == "schedule"
    assert skipped.reason is not None
    assert "manual run" in skipped.reason
    assert skipped.started_at is None
    assert skipped.scheduled_for is not None
    assert gate.max_active == 1


async def test_scheduled_fire_during_a_scheduled_run_is_recorded_skipped(
    scheduler: SchedulerService, watcher: RunWatcher
) -> None:
    gate = GatedJob()
    scheduler.add_interval_job(gate.run, 1, "gated")

    [skipped] = await watcher.wait_outcome("gated", "skipped")
    gate.release.set()
    await watcher.wait_outcome("gated", "succeeded")

    assert skipped.reason is not None
    assert "still running" in skipped.reason
    assert gate.max_active == 1
    assert scheduler.get_job("gated").counts.skipped >= 1


async def test_run_now_on_a_paused_job_runs_once_and_leaves_it_paused(
    scheduler: SchedulerService, watcher: RunWatcher
) -> None:
    scheduler.add_interval_job(succeed, 1, "paused", paused=True)

    scheduler.run_now("paused")
    await watcher.wait_outcome("paused", "succeeded")

    info = scheduler.get_job("paused")
    assert info.paused
    assert info.next_run_time is None
    assert info.next_run_times == []
    assert len(scheduler.get_runs("paused")) == 1


async def test_run_now_leaves_an_interval_jobs_next_run_time_unchanged(
    scheduler: SchedulerService, watcher: RunWatcher
) -> None:
    scheduler.add_interval_job(succeed, 3600, "hourly")
    before = scheduler.get_job("hourly").next_run_time

    scheduler.run_now("hourly")
    await watcher.wait_outcome("hourly", "succeeded")

    assert scheduler.get_job("hourly").next_run_time == before


async def test_missed_fire_is_recorded_with_its_reason(
    scheduler: SchedulerService, watcher: RunWatcher
) -> None:
    scheduler.add_interval_job(succeed, 3600, "late")
    # As if the host had been suspended: the fire time is already further back than the
    # misfire grace (60 s) when APScheduler gets to it.
    scheduler.set_next_run_time("late", datetime.now(UTC) - timedelta(seconds=90))

    [missed] = await watcher.wait_outcome("late", "missed")

    assert missed.reason == "could not start within the misfire grace time of 60 s"
    assert missed.lateness_ms is not None
    assert missed.lateness_ms >= 90_000
    assert missed.started_at is None
    assert scheduler.get_job("late").counts.missed == 1


async def test_pause_and_resume_are_idempotent(scheduler: SchedulerService) -> None:
    scheduler.add_interval_job(succeed, 3600, "job")

    assert scheduler.pause_job("job").paused
    paused = scheduler.pause_job("job")
    assert paused.paused
    assert paused.next_run_time is None

    resumed = scheduler.resume_job("job")
    assert not resumed.paused
    assert resumed.next_run_time is not None
    assert scheduler.resume_job("job").next_run_time == resumed.next_run_time


async def test_resume_without_a_future_fire_time_is_refused_and_the_job_kept(
    scheduler: SchedulerService,
) -> None:
    # A one-off job paused until after its time: resuming would have nothing left to run.
    past = datetime.now(UTC) - timedelta(hours=1)
    scheduler.add_date_job(succeed, past, "ending", paused=True)
    assert scheduler.get_job("ending").trigger_type == "date"

    with pytest.raises(JobNotResumable, match="no future fire time"):
        scheduler.resume_job("ending")

    assert scheduler.has_job("ending")
    assert scheduler.get_job("ending").paused


async def test_reschedule_changes_the_trigger_and_keeps_a_paused_job_paused(
    scheduler: SchedulerService,
) -> None:
    scheduler.add_interval_job(succeed, 3600, "job")
    info = scheduler.reschedule("job", cron="0 4 * * 0", timezone="Europe/Berlin")
    assert info.trigger_type == "cron"
    assert info.cron == "0 4 * * sun"
    assert info.timezone == "Europe/Berlin"
    assert info.trigger_details == "At 04:00 AM, only on Sunday (Europe/Berlin)"
    assert info.interval_seconds is None

    scheduler.pause_job("job")
    info = scheduler.reschedule("job", interval_seconds=60)
    assert info.paused
    assert info.next_run_time is None
    assert info.interval_seconds == 60
    assert info.trigger_details == "every minute"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"interval_seconds": 0}, "interval_seconds"),
        ({"cron": "0 25 * * *"}, "cron"),
        ({"cron": "0 4 * * *", "timezone": "Mars/Olympus"}, "timezone"),
        ({"interval_seconds": 60, "timezone": "UTC"}, "timezone"),
        ({}, "schedule"),
    ],
)
async def test_invalid_reschedule_names_the_field_and_changes_nothing(
    scheduler: SchedulerService, changes: dict[str, Any], field: str
) -> None:
    scheduler.add_interval_job(succeed, 3600, "job")
    before = scheduler.get_job("job")

    with pytest.raises(InvalidSchedule) as raised:
        scheduler.reschedule("job", **changes)

    assert raised.value.field == field
    assert scheduler.get_job("job") == before


async def test_reschedule_does_not_disturb_a_running_run(
    scheduler: SchedulerService, watcher: RunWatcher
) -> None:
    gate = GatedJob()
    scheduler.add_interval_job(gate.run, 3600, "gated")
    scheduler.run_now("gated")
    await gate.started.wait()

    scheduler.reschedule("gated", interval_seconds=7200)
    assert scheduler.get_job("gated").running
    gate.release.set()

    await watcher.wait_outcome("gated", "succeeded")


async def test_removed_job_finishes_its_run_in_flight_and_keeps_it_in_history(
    scheduler: SchedulerService, watcher: RunWatcher
) -> None:
    gate = GatedJob()
    scheduler.add_interval_job(gate.run, 3600, "gated")
    scheduler.run_now("gated")
    await gate.started.wait()

    scheduler.remove_job("gated")
    assert not scheduler.has_job("gated")
    assert [job.id for job in scheduler.list_jobs()] == []
    gate.release.set()

    await watcher.wait_outcome("gated", "succeeded")
    assert [r.outcome for r in scheduler.get_runs("gated")] == ["succeeded"]
    with pytest.raises(JobNotFound):
        scheduler.get_job("gated")


async def test_unknown_job_raises_job_not_found(scheduler: SchedulerService) -> None:
    for call in (
        scheduler.get_job,
        scheduler.pause_job,
        scheduler.resume_job,
        scheduler.run_now,
        scheduler.remove_job,
        scheduler.get_runs,
    ):
        with pytest.raises(JobNotFound):
            call("nope")


async def test_sync_functions_and_duplicate_ids_are_rejected(scheduler: SchedulerService) -> None:
    def sync_job() -> None:
        return None

    with pytest.raises(TypeError, match="async def"):
        scheduler.add_interval_job(sync_job, 60, "sync")  # type: ignore[arg-type]
    scheduler.add_interval_job(succeed, 60, "once")
    with pytest.raises(JobAlreadyExists):
        scheduler.add_cron_job(succeed, "0 4 * * *", "once")


async def test_result_is_size_capped_and_made_json_safe(
    scheduler: SchedulerService, watcher: RunWatcher
) -> None:
    async def big() -> dict[str, Any]:
        return {"items": ["x" * 100] * 100}

    async def odd() -> dict[str, Any]:
        return {"when": datetime(2024, 1, 1, tzinfo=UTC), "thing": object}

    scheduler.add_interval_job(big, 3600, "big")
    scheduler.add_interval_job(odd, 3600, "odd")
    scheduler.run_now("big")
    scheduler.run_now("odd")

    [big_run] = await watcher.wait_outcome("big", "succeeded")
    [odd_run] = await watcher.wait_outcome("odd", "succeeded")
    assert big_run.result is not None
    assert big_run.result["truncated"] is True
    assert odd_run.result is not None
    assert odd_run.result["when"] == "2024-01-01T00:00:00Z"
    assert isinstance(odd_run.result["thing"], str)


async def test_default_timeout_and_history_size_apply_from_the_next_run_on(
    scheduler: SchedulerService, watcher: RunWatcher
) -> None:
    scheduler.add_interval_job(sleep_for, 3600, "slow", args=(30,))
    assert scheduler.get_job("slow").timeout_seconds == 300

    scheduler.set_default_timeout(0.1)
    scheduler.run_now("slow")
    await watcher.wait_outcome("slow", "timed_out")

    scheduler.set_history_size(1)
    scheduler.set_default_timeout(0.05)
    scheduler.run_now("slow")
    await watcher.wait_outcome("slow", "timed_out", count=2)
    assert len(scheduler.get_runs("slow")) == 1


async def test_health_counts_jobs_and_running_runs(scheduler: SchedulerService) -> None:
    gate = GatedJob()
    scheduler.add_interval_job(gate.run, 3600, "gated")
    scheduler.add_interval_job(succeed, 3600, "other")
    scheduler.run_now("gated")
    await gate.started.wait()

    health = scheduler.health()
    assert (health.status, health.job_count, health.running_jobs) == ("running", 2, 1)
    gate.release.set()


async def test_shutdown_lets_a_short_run_finish(watcher: RunWatcher) -> None:
    service = SchedulerService(default_timezone=UTC_ZONE, shutdown_grace_seconds=5)
    service.add_run_listener(watcher)
    await service.start()
    service.add_interval_job(sleep_for, 3600, "short", args=(0.2,))
    service.run_now("short")

    await service.shutdown()

    assert watcher.outcomes("short") == ["succeeded"]
    assert service.health().status == "stopped"
    with pytest.raises(SchedulerNotRunning):
        service.run_now("short")


async def test_shutdown_cancels_runs_past_the_grace_without_logging_an_error(
    watcher: RunWatcher, caplog: pytest.LogCaptureFixture
) -> None:
    service = SchedulerService(default_timezone=UTC_ZONE, shutdown_grace_seconds=0.2)
    service.add_run_listener(watcher)
    await service.start()
    gate = GatedJob()
    service.add_interval_job(gate.run, 1, "scheduled")
    service.add_interval_job(sleep_for, 3600, "manual", args=(30,))
    await gate.started.wait()  # a scheduled run, started by APScheduler
    service.run_now("manual")

    with capture_logs() as logs, caplog.at_level(logging.WARNING):
        await service.shutdown()

    assert watcher.outcomes("scheduled") == ["cancelled"]
    assert watcher.outcomes("manual") == ["cancelled"]
    cancelled = service.get_runs("manual")[0]
    assert cancelled.reason == "still running after the shutdown grace of 0.2 s"
    assert cancelled.error is None
    assert not [entry for entry in logs if entry["log_level"] in {"error", "critical"}]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_run_listener_errors_do_not_break_recording(
    scheduler: SchedulerService, watcher: RunWatcher
) -> None:
    def broken(_: object) -> None:
        raise ValueError("metrics exploded")

    scheduler.add_run_listener(broken)
    scheduler.add_interval_job(succeed, 3600, "job")
    scheduler.run_now("job")

    await watcher.wait_outcome("job", "succeeded")
    assert scheduler.get_job("job").counts.succeeded == 1


async def test_job_detail_lists_the_next_five_fire_times(scheduler: SchedulerService) -> None:
    scheduler.add_interval_job(succeed, 600, "ten")
    detail = scheduler.get_job("ten")
    assert len(detail.next_run_times) == 5
    assert detail.next_run_times[0] == detail.next_run_time
    gaps = {b - a for a, b in zip(detail.next_run_times, detail.next_run_times[1:], strict=False)}
    assert gaps == {timedelta(seconds=600)}
