from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from structlog.testing import capture_logs

from vintagestory_api.api_settings.schemas import ApiSettings
from vintagestory_api.api_settings.service import API_SETTINGS_FILE, ApiSettingsService
from vintagestory_api.auth.keys import Role
from vintagestory_api.errors import StateWriteFailed
from vintagestory_api.metrics import jobs as metrics_jobs
from vintagestory_api.metrics.service import MetricsService
from vintagestory_api.mods import jobs as mods_jobs
from vintagestory_api.mods.service import ModsService
from vintagestory_api.scheduler.builtin import (
    BuiltinJob,
    builtin_job_settings,
    register_builtin_jobs,
)
from vintagestory_api.scheduler.control import JobControl
from vintagestory_api.scheduler.errors import InvalidSchedule, JobNotFound
from vintagestory_api.scheduler.service import SchedulerService
from vintagestory_api.scheduler.state import JOB_STATE_FILE, JobStateStore
from vintagestory_api.versions import jobs as versions_jobs
from vintagestory_api.versions.service import VersionsService


class _NeverChecked:
    """Stands in for the services the built-in jobs are bound to: the tests bind a recording
    fake as the job function instead, so only "when did you last run" is ever asked."""

    def last_checked_at(self) -> datetime | None:
        return None


# The built-in jobs as the domains declare them.
BUILTIN_JOBS: list[BuiltinJob] = [
    *versions_jobs.builtin_jobs(cast(VersionsService, _NeverChecked())),
    *mods_jobs.builtin_jobs(cast(ModsService, _NeverChecked())),
    *metrics_jobs.builtin_jobs(cast(MetricsService, _NeverChecked())),
]

ADMIN = Role.ADMIN


async def fake_job(calls: list[str], name: str) -> Mapping[str, Any] | None:
    calls.append(name)
    return None


async def plain_job() -> Mapping[str, Any] | None:
    return None


@pytest.fixture
def calls() -> list[str]:
    return []


@pytest.fixture
def bindings(calls: list[str]) -> dict[str, BuiltinJob]:
    return {
        job.id: dataclasses.replace(job, func=fake_job, args=(calls, job.id))
        for job in BUILTIN_JOBS
    }


@pytest.fixture
async def scheduler() -> AsyncIterator[SchedulerService]:
    service = SchedulerService(default_timezone=UTC, shutdown_grace_seconds=1)
    await service.start()
    yield service
    await service.shutdown()


class World:
    """Settings, job state, scheduler and job control as the lifespan wires them."""

    def __init__(
        self, state_dir: Path, scheduler: SchedulerService, bindings: dict[str, BuiltinJob]
    ) -> None:
        self.state_dir = state_dir
        self.scheduler = scheduler
        self.settings = ApiSettingsService.load(state_dir / API_SETTINGS_FILE)
        self.job_state = JobStateStore.load(state_dir / JOB_STATE_FILE)
        table = list(bindings.values())
        self.manager = register_builtin_jobs(scheduler, self.settings, self.job_state, table)
        self.control = JobControl(
            scheduler, self.settings, self.job_state, builtin_job_settings(table)
        )


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def world(state_dir: Path, scheduler: SchedulerService, bindings: dict[str, BuiltinJob]) -> World:
    return World(state_dir, scheduler, bindings)


def test_every_builtin_job_names_an_interval_setting() -> None:
    for job in BUILTIN_JOBS:
        assert job.setting in ApiSettings.model_fields
        assert job.setting.endswith("_interval")


async def test_job_state_round_trips_and_skips_needless_writes(state_dir: Path) -> None:
    store = JobStateStore.load(state_dir / JOB_STATE_FILE)
    assert await store.set_paused("a", True) is True
    assert await store.set_paused("a", True) is False
    assert await store.set_paused("b", True) is True
    assert await store.set_paused("a", False) is True
    reloaded = JobStateStore.load(state_dir / JOB_STATE_FILE)
    assert reloaded.paused == frozenset({"b"})
    assert json.loads((state_dir / JOB_STATE_FILE).read_text()) == {"paused": ["b"]}


@pytest.mark.parametrize(
    "content", [b"", b"{", b'{"paused": "a"}', b'{"paused": [1]}', b'{"x": 1}', b"[]"]
)
def test_bad_job_state_file_is_kept_aside_and_reported(state_dir: Path, content: bytes) -> None:
    state_dir.mkdir()
    (state_dir / JOB_STATE_FILE).write_bytes(content)
    with capture_logs() as logs:
        store = JobStateStore.load(state_dir / JOB_STATE_FILE)
    assert store.paused == frozenset()
    assert store.health.status == "degraded"
    (kept,) = state_dir.glob(f"{JOB_STATE_FILE}.corrupt-*")
    assert kept.read_bytes() == content
    assert any(entry["event"] == "job_state_corrupt" for entry in logs)


async def test_enabled_builtin_jobs_are_registered_with_their_intervals(world: World) -> None:
    jobs = {info.id: info for info in world.scheduler.list_jobs()}
    assert set(jobs) == {job.id for job in BUILTIN_JOBS}
    assert jobs["metrics_collection"].interval_seconds == 10
    assert jobs["mod_cache_refresh"].interval_seconds == 14400
    assert jobs["server_versions_check"].interval_seconds == 86400
    # Built-in jobs follow the default timeout setting rather than carrying their own.
    assert jobs["metrics_collection"].timeout_seconds == 300


async def test_job_left_out_of_the_table_is_not_registered(
    state_dir: Path, scheduler: SchedulerService, bindings: dict[str, BuiltinJob]
) -> None:
    del bindings["mod_cache_refresh"]
    World(state_dir, scheduler, bindings)
    assert not scheduler.has_job("mod_cache_refresh")
    assert scheduler.has_job("metrics_collection")


async def test_interval_setting_reschedules_removes_and_registers_live(world: World) -> None:
    await world.settings.patch({"metrics_collection_interval": 5}, role=ADMIN)
    info = world.scheduler.get_job("metrics_collection")
    assert info.interval_seconds == 5
    assert info.next_run_time is not None
    assert info.next_run_time - datetime.now(UTC) <= timedelta(seconds=5)

    await world.settings.patch({"metrics_collection_interval": 0}, role=ADMIN)
    assert not world.scheduler.has_job("metrics_collection")

    await world.settings.patch({"metrics_collection_interval": 10}, role=ADMIN)
    assert world.scheduler.get_job("metrics_collection").interval_seconds == 10


async def test_history_size_and_default_timeout_apply_live(world: World) -> None:
    await world.settings.patch(
        {"default_job_timeout_seconds": 42, "job_history_size": 3}, role=ADMIN
    )
    assert world.scheduler.get_job("metrics_collection").timeout_seconds == 42


async def test_job_patch_on_builtin_updates_the_setting(world: World) -> None:
    with capture_logs() as logs:
        info = await world.control.reschedule("mod_cache_refresh", interval_seconds=600, role=ADMIN)
    assert info.interval_seconds == 600
    assert world.settings.settings.mod_list_refresh_interval == 600
    on_disk = json.loads((world.state_dir / API_SETTINGS_FILE).read_text())
    assert on_disk["mod_list_refresh_interval"] == 600
    changed = next(entry for entry in logs if entry["event"] == "api_settings_changed")
    assert changed["role"] == "admin"
    assert changed["changes"] == {"mod_list_refresh_interval": {"old": 14400, "new": 600}}


@pytest.mark.parametrize(
    ("kwargs", "field", "needle"),
    [
        ({"cron": "0 4 * * *"}, "cron", "interval-scheduled"),
        ({"interval_seconds": 0}, "interval_seconds", "at least 1 second"),
        ({"interval_seconds": 30}, "interval_seconds", "at least 60"),
    ],
)
async def test_invalid_schedule_for_builtin_changes_nothing(
    world: World, kwargs: dict[str, Any], field: str, needle: str
) -> None:
    with pytest.raises(InvalidSchedule) as info:
        await world.control.reschedule("mod_cache_refresh", role=ADMIN, **kwargs)
    assert info.value.field == field
    assert needle in info.value.reason
    assert world.scheduler.get_job("mod_cache_refresh").interval_seconds == 14400
    assert not (world.state_dir / API_SETTINGS_FILE).exists()


async def test_delete_builtin_sets_its_interval_to_zero(world: World) -> None:
    await world.control.delete("server_versions_check", role=ADMIN)
    assert not world.scheduler.has_job("server_versions_check")
    assert world.settings.settings.server_versions_refresh_interval == 0
    with pytest.raises(JobNotFound):
        await world.control.delete("server_versions_check", role=ADMIN)


async def test_plain_jobs_go_straight_to_the_scheduler(world: World) -> None:
    world.scheduler.add_interval_job(plain_job, 60, "plain_job")
    info = await world.control.reschedule("plain_job", cron="0 4 * * *", role=ADMIN)
    assert info.cron == "0 4 * * *"
    await world.control.delete("plain_job", role=ADMIN)
    assert not world.scheduler.has_job("plain_job")
    assert world.settings.settings == ApiSettings()


async def test_pause_and_resume_are_persisted_and_logged(world: World) -> None:
    with capture_logs() as logs:
        info = await world.control.pause("metrics_collection", role=ADMIN)
        again = await world.control.pause("metrics_collection", role=ADMIN)
    assert info.paused
    assert again.paused
    assert world.job_state.is_paused("metrics_collection")
    paused_logs = [entry for entry in logs if entry["event"] == "job_paused" and "role" in entry]
    assert len(paused_logs) == 1
    assert paused_logs[0]["old"] == {"paused": False}
    info = await world.control.resume("metrics_collection", role=ADMIN)
    assert not info.paused
    assert not JobStateStore.load(world.state_dir / JOB_STATE_FILE).is_paused("metrics_collection")


async def test_pause_or_resume_that_changes_nothing_leaves_the_files_untouched(
    world: World,
) -> None:
    path = world.state_dir / JOB_STATE_FILE
    await world.control.pause("metrics_collection", role=ADMIN)
    await world.control.pause("mod_cache_refresh", role=ADMIN)
    files = (path, path.with_name(path.name + ".bak"))
    before = [(p.read_bytes(), p.stat().st_ino) for p in files]
    await world.control.pause("metrics_collection", role=ADMIN)
    await world.control.resume("server_versions_check", role=ADMIN)
    assert [(p.read_bytes(), p.stat().st_ino) for p in files] == before


async def test_pause_is_undone_when_it_cannot_be_saved(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(*_: object, **__: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("vintagestory_api.scheduler.state.write_json", full_disk)
    with pytest.raises(StateWriteFailed):
        await world.control.pause("metrics_collection", role=ADMIN)
    assert not world.scheduler.get_job("metrics_collection").paused


async def test_unknown_job_is_404_for_every_control(world: World) -> None:
    with pytest.raises(JobNotFound):
        await world.control.pause("nope", role=ADMIN)
    with pytest.raises(JobNotFound):
        await world.control.reschedule("nope", interval_seconds=60, role=ADMIN)


async def test_restart_keeps_intervals_and_paused_states(
    state_dir: Path, bindings: dict[str, BuiltinJob], calls: list[str]
) -> None:
    first = SchedulerService(default_timezone=UTC, shutdown_grace_seconds=1)
    await first.start()
    world = World(state_dir, first, bindings)
    await world.settings.patch(
        {"metrics_collection_interval": 5, "mod_list_refresh_interval": 0}, role=ADMIN
    )
    await world.control.pause("server_versions_check", role=ADMIN)
    await first.shutdown()

    second = SchedulerService(default_timezone=UTC, shutdown_grace_seconds=1)
    await second.start()
    try:
        World(state_dir, second, bindings)
        assert second.get_job("metrics_collection").interval_seconds == 5
        assert not second.has_job("mod_cache_refresh")
        versions = second.get_job("server_versions_check")
        # Paused before the restart, still paused after it, and not run at startup either.
        assert versions.paused
        assert versions.next_run_time is None
    finally:
        await second.shutdown()


async def test_versions_check_runs_right_after_startup_unless_paused(
    state_dir: Path, scheduler: SchedulerService, bindings: dict[str, BuiltinJob]
) -> None:
    World(state_dir, scheduler, bindings)
    info = scheduler.get_job("server_versions_check")
    assert info.next_run_time is not None
    assert info.next_run_time - datetime.now(UTC) < timedelta(seconds=5)


async def test_one_failing_job_does_not_stop_the_others_following(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = world.scheduler.reschedule

    def flaky(job_id: str, **kwargs: Any) -> Any:
        if job_id == "mod_cache_refresh":  # applied before metrics_collection (table order)
            raise RuntimeError("scheduler hiccup")
        return real(job_id, **kwargs)

    monkeypatch.setattr(world.scheduler, "reschedule", flaky)
    with capture_logs() as logs:
        await world.settings.patch(
            {"mod_list_refresh_interval": 600, "metrics_collection_interval": 7}, role=ADMIN
        )
    assert world.scheduler.get_job("metrics_collection").interval_seconds == 7
    assert any(entry["event"] == "builtin_job_apply_failed" for entry in logs)
