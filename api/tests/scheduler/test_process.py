"""The scheduler in the real served process: graceful SIGTERM, cancellation, the instance lock."""

from __future__ import annotations

import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.keys import ADMIN_KEY
from tests.support.process_app import JOB_ID, JOB_SECONDS_ENV
from tests.support.server_process import ServerProcess

API_DIR = Path(__file__).resolve().parents[2]


def start_server(data_dir: Path, **env: str) -> ServerProcess:
    return ServerProcess(
        data_dir,
        env={"VS_API_KEY_ADMIN": ADMIN_KEY, "PYTHONPATH": str(API_DIR), **env},
        module="tests.support.process_app",
    )


def run_job_now(server: ServerProcess) -> None:
    response = httpx.post(
        f"{server.base_url}/api/v1alpha1/jobs/{JOB_ID}/run",
        headers={"X-API-Key": ADMIN_KEY},
        timeout=5,
    )
    assert response.status_code == 202, response.text
    server.wait_for_log("job_run_started", job_id=JOB_ID)


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.kill()


def test_sigterm_during_a_run_lets_it_finish_and_exits_0(
    tmp_path: Path, servers: list[ServerProcess]
) -> None:
    server = start_server(tmp_path / "data", **{JOB_SECONDS_ENV: "2"})
    servers.append(server)
    server.wait_healthy()
    run_job_now(server)

    server.signal(signal.SIGTERM)

    assert server.wait_exit(timeout=30) == 0
    finished = server.wait_for_log("job_run_finished", timeout=1, job_id=JOB_ID)
    assert finished["outcome"] == "succeeded"
    events = [entry["event"] for entry in server.json_lines()]
    assert events.index("job_run_finished") < events.index("scheduler_stopped")


def test_run_longer_than_the_grace_is_cancelled_and_the_process_exits_promptly(
    tmp_path: Path, servers: list[ServerProcess]
) -> None:
    grace = 1.0
    server = start_server(
        tmp_path / "data", VS_SHUTDOWN_GRACE_SECONDS=str(grace), **{JOB_SECONDS_ENV: "10"}
    )
    servers.append(server)
    server.wait_healthy()
    run_job_now(server)

    sent = time.monotonic()
    server.signal(signal.SIGTERM)
    code = server.wait_exit(timeout=grace + 5)
    elapsed = time.monotonic() - sent

    assert code == 0
    assert elapsed < grace + 5
    finished = server.wait_for_log("job_run_finished", timeout=1, job_id=JOB_ID)
    assert finished["outcome"] == "cancelled"
    assert "grace" in finished["reason"]
    # A cancellation at shutdown is an outcome, not a crash: no error and no traceback logged.
    for entry in server.json_lines():
        assert entry.get("level") not in {"error", "critical"}, entry
        assert "exception" not in entry, entry


def test_second_instance_on_the_same_data_dir_exits_non_zero_until_the_first_dies(
    tmp_path: Path, servers: list[ServerProcess]
) -> None:
    data_dir = tmp_path / "data"
    first = start_server(data_dir)
    servers.append(first)
    first.wait_healthy()

    second = start_server(data_dir)
    servers.append(second)
    assert second.wait_exit(timeout=30) != 0
    refused = second.wait_for_log("instance_already_running", timeout=1)
    assert "another instance" in refused["message"]
    assert "scheduler.lock" in refused["lock"]

    # The kernel drops the lock with its holder, however it died.
    first.signal(signal.SIGKILL)
    first.wait_exit(timeout=10)
    third = start_server(data_dir)
    servers.append(third)
    third.wait_healthy()
    third.wait_for_log("scheduler_started")


def _runs(server: ServerProcess) -> list[dict[str, object]]:
    response = httpx.get(
        f"{server.base_url}/api/v1alpha1/jobs/{JOB_ID}/runs",
        headers={"X-API-Key": ADMIN_KEY},
        timeout=5,
    )
    assert response.status_code == 200, response.text
    runs: list[dict[str, object]] = response.json()["data"]["runs"]
    return runs


def _stored_outcomes(db: Path) -> list[str]:
    """The outcomes of the sleeper's runs in the run database (other jobs run here too)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        rows = connection.execute("SELECT outcome FROM runs WHERE job_id = ?", (JOB_ID,))
        return [row[0] for row in rows]


def test_runs_survive_a_restart_and_a_run_cut_off_by_sigkill_is_interrupted(
    tmp_path: Path, servers: list[ServerProcess]
) -> None:
    data_dir = tmp_path / "data"
    first = start_server(data_dir, **{JOB_SECONDS_ENV: "0.1"})
    servers.append(first)
    first.wait_healthy()
    run_job_now(first)
    first.wait_for_log("job_run_finished", job_id=JOB_ID)
    first.signal(signal.SIGTERM)
    assert first.wait_exit(timeout=30) == 0

    second = start_server(data_dir, **{JOB_SECONDS_ENV: "10"})
    servers.append(second)
    second.wait_healthy()
    [kept] = _runs(second)
    assert (kept["outcome"], kept["result"]) == ("succeeded", {"slept_seconds": 0.1})
    run_job_now(second)
    # The run's start is written behind within about a second; kill only once it is on disk.
    db = data_dir / "state" / "runs.db"
    second.wait_until(lambda: "running" in _stored_outcomes(db), 10, "the running row on disk")
    second.kill()

    third = start_server(data_dir)
    servers.append(third)
    third.wait_healthy()
    cut_off, earlier = _runs(third)
    assert cut_off["outcome"] == "interrupted"
    assert cut_off["reason"] == "the API stopped while it ran"
    assert earlier["run_id"] == kept["run_id"]
    jobs = httpx.get(
        f"{third.base_url}/api/v1alpha1/jobs/{JOB_ID}", headers={"X-API-Key": ADMIN_KEY}
    ).json()["data"]
    assert (jobs["counts"]["succeeded"], jobs["counts"]["interrupted"]) == (1, 1)
