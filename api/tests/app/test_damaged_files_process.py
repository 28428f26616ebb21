"""The real service (`python -m vintagestory_api`) on a data directory with damaged files.

It either starts degraded and says so in `/healthz`, or refuses to start with one line naming
the file and the fix; never a traceback, never a hang. Each start takes seconds, so one start
damages every file at once (each kind of damage on some file); the tests in tests/health,
tests/auth and tests/kit take each file and each kind one at a time, in process.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.damage import (
    damage,
    permission_modes_enforceable,
    release_fifo,
    without_permission_override,
)
from tests.support.keys import ADMIN_KEY
from tests.support.offline import BUILTIN_JOBS_OFF
from tests.support.server_process import ServerProcess
from vintagestory_api.kit.state_files import write_json

# Nothing leaves the machine even when a damaged settings file turns the built-in jobs on.
OFFLINE = {
    "VS_VERSIONS_URL": "http://127.0.0.1:9",
    "VS_MOD_API_URL": "http://127.0.0.1:9/api",
    "VS_HTTP_RETRIES": "0",
    "VS_SHUTDOWN_GRACE_SECONDS": "5",
}

# Files the service owns and reports in /healthz under `state_files`, with their damage.
OWNED = {
    "admin-api-key": "fifo",
    "job-state.json": "directory",
    "versions-cache.json": "invalid_utf8",
    "mod-cache.json": "fifo",
}
# Files only read at runtime, or only touched when a write rotates them.
ALSO_DAMAGED = {
    "state/job-state.json.bak": "invalid_utf8",
    "state/api-settings.json.bak": "directory",
    "state/server.pid": "fifo",
    "server/current_version": "directory",
}


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    data = tmp_path / "data"
    yield data
    # A reader the service left blocked on a FIFO (only before the fix) must not outlive us.
    for fifo in data.rglob("*"):
        if fifo.is_fifo():
            release_fifo(fifo)


def _start(data_dir: Path, env: dict[str, str], **kwargs: Any) -> ServerProcess:
    return ServerProcess(data_dir, env={**OFFLINE, **env}, **kwargs)


def _no_traceback(server: ServerProcess) -> None:
    # A failed job run is logged with its traceback, as every failed run is; that is the
    # offline version check here when damaged settings turn the built-in jobs on.
    startup = [line for line in server.output() if '"job_run_finished"' not in line]
    assert not [line for line in startup if "Traceback" in line], startup


def _lines_naming(server: ServerProcess, needle: str) -> list[str]:
    return [line for line in server.output() if needle in line]


def test_service_starts_degraded_with_every_state_file_damaged(data_dir: Path) -> None:
    state = data_dir / "state"
    write_json(state / "api-settings.json", BUILTIN_JOBS_OFF)
    write_json(state / "api-settings.json", BUILTIN_JOBS_OFF)  # so that a backup is due
    for name, kind in OWNED.items():
        damage(state / name, kind)
    for relative, kind in ALSO_DAMAGED.items():
        damage(data_dir / relative, kind)
    server = _start(data_dir, {})
    try:
        server.wait_healthy(timeout=20)
        with httpx.Client(base_url=server.base_url, timeout=5) as http:
            health = http.get("/healthz").json()["data"]
            assert health["status"] == "degraded"
            for name in OWNED:
                assert health["state_files"][name]["status"] == "degraded", health
                assert name in health["state_files"][name]["reason"]
            assert "new key" in health["state_files"]["admin-api-key"]["reason"]
            # The damaged key was set aside and a new one generated in its place.
            key = (state / "admin-api-key").read_text().strip()
            headers = {"X-API-Key": key}
            latest = http.get("/api/v1alpha1/versions/latest", headers=headers)
            assert latest.status_code == 200, latest.text
            assert latest.json()["data"]["installed"] is None
            assert http.get("/api/v1alpha1/mods", headers=headers).status_code == 200
            assert http.get("/api/v1alpha1/metrics/current", headers=headers).status_code == 200
            # Writes work again: the damaged backups were set aside, not written over.
            patched = http.patch(
                "/api/v1alpha1/config/api", headers=headers, json={"job_history_size": 7}
            )
            assert patched.status_code == 200, patched.text
        server.signal(signal.SIGTERM)
        assert server.wait_exit() == 0
    finally:
        server.kill()
    _no_traceback(server)
    for name in OWNED:
        assert list(state.glob(f"{name}.corrupt-*")), name


@pytest.fixture
def modes_enforceable(tmp_path: Path) -> bool:
    return permission_modes_enforceable(tmp_path)


@pytest.fixture
def modes_enforced(modes_enforceable: bool) -> None:
    if not modes_enforceable:
        pytest.skip("cannot run a subprocess that obeys file modes here")


def _lock_is_a_directory(state: Path) -> tuple[dict[str, str], Path, str]:
    damage(state / "scheduler.lock", "directory")
    return {"VS_API_KEY_ADMIN": ADMIN_KEY}, state / "scheduler.lock", "remove it"


def _admin_key_unreadable(state: Path) -> tuple[dict[str, str], Path, str]:
    key_file = state / "admin-api-key"
    key_file.write_text("a-key-a-script-of-the-admin-uses\n")
    # What one `sudo` run leaves behind for a service user: a file it may not read. A new
    # key in its place would lock out every script that uses the old one.
    key_file.chmod(0)
    return {}, key_file, "permission denied"


def _generated_key_cannot_be_stored(state: Path) -> tuple[dict[str, str], Path, str]:
    (state / "scheduler.lock").touch()
    # A key that is not stored is a key nobody can learn: it is never logged.
    state.chmod(0o555)
    return {}, state / "admin-api-key", "writable"


@pytest.mark.parametrize(
    "arrange", [_lock_is_a_directory, _admin_key_unreadable, _generated_key_cannot_be_stored]
)
def test_service_refuses_with_one_line_naming_the_file_and_the_fix(
    data_dir: Path,
    arrange: Callable[[Path], tuple[dict[str, str], Path, str]],
    modes_enforceable: bool,
) -> None:
    if arrange is not _lock_is_a_directory and not modes_enforceable:
        pytest.skip("cannot run a subprocess that obeys file modes here")
    state = data_dir / "state"
    state.mkdir(parents=True)
    env, path, fix = arrange(state)
    server = _start(data_dir, env, preexec_fn=without_permission_override)
    try:
        code = server.wait_exit(timeout=20)
    finally:
        server.kill()
        state.chmod(0o755)
    assert code != 0
    _no_traceback(server)
    (line,) = _lines_naming(server, str(path))
    message = json.loads(line)["message"]
    assert fix in message
    if path.name == "admin-api-key":
        assert "VS_API_KEY_ADMIN" in message
    if arrange is _admin_key_unreadable:
        path.chmod(0o600)
        assert path.read_text() == "a-key-a-script-of-the-admin-uses\n"


@pytest.mark.usefixtures("modes_enforced")
def test_unreadable_files_in_a_read_only_state_dir_start_degraded_and_report_failed_writes(
    data_dir: Path,
) -> None:
    state = data_dir / "state"
    write_json(state / "api-settings.json", {"job_history_size": 9})
    write_json(state / "job-state.json", {"paused": []})
    (state / "scheduler.lock").touch()
    for name in ("api-settings.json", "job-state.json"):
        (state / name).chmod(0)
    # Neither set aside nor rewritten: the directory is read-only to the service.
    state.chmod(0o555)
    server = _start(
        data_dir, {"VS_API_KEY_ADMIN": ADMIN_KEY}, preexec_fn=without_permission_override
    )
    try:
        server.wait_healthy(timeout=20)
        with httpx.Client(base_url=server.base_url, timeout=5) as http:
            health = http.get("/healthz").json()["data"]
            assert health["status"] == "degraded"
            for name in ("api-settings.json", "job-state.json"):
                reason = health["state_files"][name]["reason"]
                assert "permission denied" in reason.lower(), reason
                assert "could not be set aside" in reason, reason
            assert health["settings"]["status"] == "degraded"
            patched = http.patch(
                "/api/v1alpha1/config/api",
                headers={"X-API-Key": ADMIN_KEY},
                json={"job_history_size": 7},
            )
            assert patched.status_code == 500
            assert patched.json()["error"]["code"] == "STATE_WRITE_FAILED"
            after = http.get("/healthz").json()["data"]["state_files"]["api-settings.json"]
            assert after["status"] == "degraded"
            assert "write failed" in after["reason"], after
        server.signal(signal.SIGTERM)
        assert server.wait_exit() == 0
    finally:
        server.kill()
        state.chmod(0o755)
    _no_traceback(server)
