"""The jobs API over HTTP, against the real app and lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import TypeAdapter

from tests.support.fakes import GatedJob, RunWatcher, succeed
from tests.support.keys import ADMIN_KEY, MONITOR_KEY
from vintagestory_api.kit.envelope import ApiResponse
from vintagestory_api.scheduler.schemas import JobList
from vintagestory_api.scheduler.service import SchedulerService

JOBS = "/api/v1alpha1/jobs"
ADMIN = {"X-API-Key": ADMIN_KEY}


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    # The lifespan and the requests share this test's event loop, so a test can steer jobs
    # and wait on them directly.
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test", headers=ADMIN
        ) as client,
    ):
        yield client


@pytest.fixture
def scheduler(app: FastAPI, http: httpx.AsyncClient) -> SchedulerService:
    service: SchedulerService = app.state.scheduler
    return service


@pytest.fixture
def watcher(scheduler: SchedulerService) -> RunWatcher:
    watcher = RunWatcher()
    scheduler.add_run_listener(watcher)
    return watcher


@pytest.fixture
def gate(scheduler: SchedulerService) -> GatedJob:
    gate = GatedJob()
    scheduler.add_interval_job(gate.run, 3600, "gated", description="waits for the test")
    return gate


async def test_jobs_need_the_admin_role(http: httpx.AsyncClient, gate: GatedJob) -> None:
    monitor = {"X-API-Key": MONITOR_KEY}
    assert (await http.get(JOBS, headers=monitor)).status_code == 403
    assert (await http.post(f"{JOBS}/gated/run", headers=monitor)).status_code == 403
    assert (await http.get(JOBS, headers={"X-API-Key": ""})).status_code == 401
    assert gate.calls == 0


async def test_list_and_get_show_schedule_state_and_next_fire_times(
    http: httpx.AsyncClient, gate: GatedJob
) -> None:
    listed = (await http.get(JOBS)).json()["data"]["jobs"]
    [job] = [j for j in listed if j["id"] == "gated"]
    assert job["trigger_type"] == "interval"
    assert job["trigger_details"] == "every hour"
    assert job["interval_seconds"] == 3600
    assert job["timezone"] == "UTC"
    assert job["paused"] is False
    assert job["running"] is False
    assert job["last_run"] is None
    assert job["counts"]["failed"] == 0
    assert datetime.fromisoformat(job["next_run_time"]).utcoffset() is not None

    detail = (await http.get(f"{JOBS}/gated")).json()["data"]
    assert len(detail["next_run_times"]) == 5
    assert detail["next_run_times"][0] == detail["next_run_time"]


async def test_unknown_job_is_404_job_not_found(http: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "/nope"),
        ("GET", "/nope/runs"),
        ("POST", "/nope/run"),
        ("POST", "/nope/pause"),
        ("POST", "/nope/resume"),
        ("DELETE", "/nope"),
    ]:
        response = await http.request(method, f"{JOBS}{path}")
        assert response.status_code == 404, (method, path)
        assert response.json()["error"]["code"] == "JOB_NOT_FOUND"


async def test_an_overlong_job_id_is_a_short_422(http: httpx.AsyncClient) -> None:
    response = await http.get(f"{JOBS}/{'a' * 8000}")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert "path.job_id" in error["message"]
    assert len(error["message"]) < 200, error["message"][:300]


async def test_job_not_found_does_not_echo_a_long_id_whole(http: httpx.AsyncClient) -> None:
    response = await http.post(f"{JOBS}/{'b' * 200}/run")
    assert response.status_code == 404
    message = response.json()["error"]["message"]
    assert message.startswith("job 'bbb")
    assert "…" in message
    assert len(message) < 150, message


async def test_run_now_is_202_and_a_second_one_while_running_is_409(
    http: httpx.AsyncClient, gate: GatedJob, watcher: RunWatcher
) -> None:
    first = await http.post(f"{JOBS}/gated/run")
    assert first.status_code == 202
    run = first.json()["data"]
    assert run["outcome"] == "running"
    assert run["trigger"] == "manual"
    await gate.started.wait()

    second = await http.post(f"{JOBS}/gated/run")
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "JOB_ALREADY_RUNNING"

    gate.release.set()
    await watcher.wait_outcome("gated", "succeeded")
    runs = (await http.get(f"{JOBS}/gated/runs", params={"limit": 5})).json()["data"]["runs"]
    assert [(r["run_id"], r["outcome"]) for r in runs] == [(run["run_id"], "succeeded")]
    assert runs[0]["result"] == {"calls": 1}


async def test_twenty_concurrent_run_requests_start_one_run(
    http: httpx.AsyncClient, gate: GatedJob, watcher: RunWatcher
) -> None:
    responses = await asyncio.gather(*(http.post(f"{JOBS}/gated/run") for _ in range(20)))
    gate.release.set()
    await watcher.wait_outcome("gated", "succeeded")

    codes = sorted(r.status_code for r in responses)
    assert codes == [202] + [409] * 19
    assert gate.max_active == 1
    assert gate.calls == 1


async def test_run_now_on_a_paused_job_keeps_it_paused(
    http: httpx.AsyncClient, gate: GatedJob, watcher: RunWatcher
) -> None:
    paused = (await http.post(f"{JOBS}/gated/pause")).json()["data"]
    assert paused["paused"] is True
    assert paused["next_run_time"] is None
    gate.release.set()

    assert (await http.post(f"{JOBS}/gated/run")).status_code == 202
    await watcher.wait_outcome("gated", "succeeded")

    job = (await http.get(f"{JOBS}/gated")).json()["data"]
    assert job["paused"] is True
    assert job["next_run_time"] is None
    assert job["last_run"]["outcome"] == "succeeded"
    assert job["counts"]["succeeded"] == 1


async def test_pause_and_resume_are_idempotent(http: httpx.AsyncClient, gate: GatedJob) -> None:
    for _ in range(2):
        response = await http.post(f"{JOBS}/gated/pause")
        assert response.status_code == 200
        assert response.json()["data"]["paused"] is True
    for _ in range(2):
        response = await http.post(f"{JOBS}/gated/resume")
        assert response.status_code == 200
        assert response.json()["data"]["paused"] is False
        assert response.json()["data"]["next_run_time"] is not None


async def test_patch_with_an_unknown_field_is_422_and_changes_nothing(
    http: httpx.AsyncClient, gate: GatedJob
) -> None:
    before = (await http.get(f"{JOBS}/gated")).json()["data"]

    for body in [{"func": "os:system"}, {"func": "os:system", "interval_seconds": 60}]:
        response = await http.patch(f"{JOBS}/gated", json=body)
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "VALIDATION_ERROR"
        assert "func" in response.json()["error"]["message"]

    assert (await http.get(f"{JOBS}/gated")).json()["data"] == before


@pytest.mark.parametrize(
    ("body", "code", "names"),
    [
        ({"interval_seconds": 60, "cron": "* * * * *"}, "VALIDATION_ERROR", "exactly one"),
        ({}, "VALIDATION_ERROR", "exactly one"),
        ({"interval_seconds": "60"}, "VALIDATION_ERROR", "interval_seconds"),
        ({"interval_seconds": True}, "VALIDATION_ERROR", "interval_seconds"),
        ({"interval_seconds": 0}, "INVALID_SCHEDULE", "interval_seconds"),
        ({"cron": "0 25 * * *"}, "INVALID_SCHEDULE", "hour"),
        ({"cron": "0 4 * *"}, "INVALID_SCHEDULE", "cron"),
        ({"cron": "0 4 * * *", "timezone": "Nowhere/Land"}, "INVALID_SCHEDULE", "timezone"),
    ],
)
async def test_patch_with_a_bad_schedule_is_422_naming_the_field(
    http: httpx.AsyncClient, gate: GatedJob, body: dict[str, object], code: str, names: str
) -> None:
    before = (await http.get(f"{JOBS}/gated")).json()["data"]

    response = await http.patch(f"{JOBS}/gated", json=body)

    assert response.status_code == 422
    assert response.json()["error"]["code"] == code
    assert names in response.json()["error"]["message"]
    assert (await http.get(f"{JOBS}/gated")).json()["data"] == before


async def test_patch_reschedules_to_cron_and_back_to_an_interval(
    http: httpx.AsyncClient, gate: GatedJob
) -> None:
    response = await http.patch(
        f"{JOBS}/gated", json={"cron": "0 4 * * 0", "timezone": "Europe/Berlin"}
    )
    assert response.status_code == 200
    job = response.json()["data"]
    assert job["trigger_type"] == "cron"
    assert job["cron"] == "0 4 * * sun"
    assert job["trigger_details"] == "At 04:00 AM, only on Sunday (Europe/Berlin)"
    next_run = datetime.fromisoformat(job["next_run_time"])
    assert (next_run.strftime("%A %H:%M"), str(next_run.utcoffset())) in {
        ("Sunday 04:00", "1:00:00"),
        ("Sunday 04:00", "2:00:00"),
    }

    job = (await http.patch(f"{JOBS}/gated", json={"interval_seconds": 14400})).json()["data"]
    assert job["trigger_details"] == "every 4 hours"
    assert job["cron"] is None


async def test_delete_removes_the_job(http: httpx.AsyncClient, gate: GatedJob) -> None:
    response = await http.delete(f"{JOBS}/gated")
    assert response.status_code == 200
    assert response.json()["data"] == {"id": "gated", "deleted": True}
    assert (await http.get(f"{JOBS}/gated")).status_code == 404
    assert (await http.delete(f"{JOBS}/gated")).status_code == 404


async def test_runs_limit_is_validated(http: httpx.AsyncClient, gate: GatedJob) -> None:
    response = await http.get(f"{JOBS}/gated/runs", params={"limit": 0})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"


async def test_health_reports_the_scheduler_and_readyz_fails_once_it_stops(
    http: httpx.AsyncClient, scheduler: SchedulerService
) -> None:
    scheduler.add_interval_job(succeed, 3600, "one")
    health = (await http.get("/healthz")).json()["data"]["scheduler"]
    assert health["status"] == "running"
    assert health["job_count"] >= 1
    assert health["running_jobs"] == 0
    assert (await http.get("/readyz")).status_code == 200

    await scheduler.shutdown()

    ready = await http.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["data"]["checks"]["scheduler_running"] is False
    assert (await http.get("/healthz")).json()["data"]["scheduler"]["status"] == "stopped"


async def test_openapi_documents_every_jobs_route_with_schemas_and_errors(
    http: httpx.AsyncClient,
) -> None:
    spec = (await http.get("/openapi.json")).json()
    paths = spec["paths"]
    expected = {
        (f"{JOBS}", "get"): {"200", "401", "403"},
        (f"{JOBS}/{{job_id}}", "get"): {"200", "404"},
        (f"{JOBS}/{{job_id}}", "patch"): {"200", "404", "422"},
        (f"{JOBS}/{{job_id}}", "delete"): {"200", "404"},
        (f"{JOBS}/{{job_id}}/runs", "get"): {"200", "404", "422"},
        (f"{JOBS}/{{job_id}}/run", "post"): {"202", "404", "409"},
        (f"{JOBS}/{{job_id}}/pause", "post"): {"200", "404"},
        (f"{JOBS}/{{job_id}}/resume", "post"): {"200", "404", "409"},
        ("/api/v1alpha1/triggers/preview", "post"): {"200", "422"},
    }
    for (path, method), codes in expected.items():
        operation = paths[path][method]
        assert operation["summary"], (path, method)
        assert codes <= set(operation["responses"]), (path, method)
        success = next(c for c in operation["responses"] if c.startswith("2"))
        assert "$ref" in str(operation["responses"][success]["content"]), (path, method)
    patch_body = paths[f"{JOBS}/{{job_id}}"]["patch"]["requestBody"]["content"]
    assert "JobScheduleUpdate" in str(patch_body)
    assert spec["components"]["schemas"]["JobScheduleUpdate"]["additionalProperties"] is False


async def test_job_list_is_the_same_json_fastapi_would_send(
    http: httpx.AsyncClient, scheduler: SchedulerService, gate: GatedJob
) -> None:
    response = await http.get(JOBS)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    expected = TypeAdapter(ApiResponse[JobList]).dump_json(
        ApiResponse[JobList](data=JobList(jobs=scheduler.list_jobs())), by_alias=True
    )
    assert response.content == expected
    schema = (await http.get("/openapi.json")).json()["paths"][JOBS]["get"]["responses"]["200"]
    assert schema["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ApiResponse_JobList_"
    }


async def test_job_list_shows_every_change_at_once(
    http: httpx.AsyncClient, gate: GatedJob, watcher: RunWatcher
) -> None:
    async def listed() -> dict[str, Any]:
        jobs = (await http.get(JOBS)).json()["data"]["jobs"]
        [job] = [j for j in jobs if j["id"] == "gated"]
        detail = (await http.get(f"{JOBS}/gated")).json()["data"]
        del detail["next_run_times"]
        assert job == detail
        shown: dict[str, Any] = job
        return shown

    assert (await listed())["running"] is False
    await http.post(f"{JOBS}/gated/run")
    await asyncio.wait_for(gate.started.wait(), timeout=5)
    running = await listed()
    assert running["running"] is True
    assert running["last_run"]["outcome"] == "running"

    gate.release.set()
    await watcher.wait_outcome("gated", "succeeded")
    done = await listed()
    assert done["running"] is False
    assert done["last_run"]["outcome"] == "succeeded"
    assert done["counts"]["succeeded"] == 1

    await http.post(f"{JOBS}/gated/pause")
    assert (await listed())["next_run_time"] is None
    await http.post(f"{JOBS}/gated/resume")
    assert (await listed())["next_run_time"] is not None
    await http.patch(f"{JOBS}/gated", json={"interval_seconds": 7200})
    assert (await listed())["trigger_details"] == "every 2 hours"
    await http.delete(f"{JOBS}/gated")
    assert "gated" not in [j["id"] for j in (await http.get(JOBS)).json()["data"]["jobs"]]


async def test_job_list_shows_the_next_fire_time_after_a_job_fires(
    http: httpx.AsyncClient, scheduler: SchedulerService, watcher: RunWatcher
) -> None:
    scheduler.add_interval_job(succeed, 1, "tick")

    async def next_run() -> datetime:
        jobs = (await http.get(JOBS)).json()["data"]["jobs"]
        [job] = [j for j in jobs if j["id"] == "tick"]
        return datetime.fromisoformat(job["next_run_time"])

    before = await next_run()
    await watcher.wait_outcome("tick", "succeeded")

    after = await next_run()
    assert after > before
    assert after == scheduler.get_job("tick").next_run_time
