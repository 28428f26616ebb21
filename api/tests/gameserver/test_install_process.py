"""Installed versions running: the fake server packed in a tarball, launched as the real child.

`VS_SERVER_COMMAND` names `{server_dir}`, so what runs is the launcher inside the current
version's directory; each tarball's launcher gives the fake its own version (and mode).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psutil
import pytest
from fastapi.testclient import TestClient

from tests.support.gameserver import ADMIN, console_texts, events, status, wait_state, wait_until
from tests.support.installs import INSTALL, ROLLBACK, install_settings, wait_install_sync
from tests.support.server_tarball import StubCdn, server_tarball
from tests.support.stub_server import StubServer
from vintagestory_api.app import create_app
from vintagestory_api.config import Settings


@pytest.fixture
def cdn() -> Iterator[StubCdn]:
    with StubServer.running() as stub:
        yield StubCdn(stub)


@pytest.fixture
def game(game_settings: Settings, cdn: StubCdn) -> Iterator[TestClient]:
    with TestClient(create_app(install_settings(game_settings, cdn))) as client:
        yield client


def _install(client: TestClient, version: str, **body: Any) -> dict[str, Any]:
    response = client.post(INSTALL, json={"version": version, **body}, headers=ADMIN)
    assert response.status_code == 202, response.text
    return wait_install_sync(client, ADMIN)


def _started(client: TestClient) -> dict[str, Any]:
    assert client.post("/api/v1alpha1/server/start", headers=ADMIN).status_code == 202
    return wait_state(client, "running")


def _runs_from(pid: int) -> str:
    """The directory of the script the process runs (the fake, after the launcher's exec)."""
    script = psutil.Process(pid).cmdline()[1]
    return script.rsplit("/", 1)[0]


def test_an_installed_tarball_runs_and_a_failed_update_leaves_it_runnable(
    game: TestClient, cdn: StubCdn, game_settings: Settings
) -> None:
    versions = game_settings.game_server_dir / "versions"
    cdn.publish("1.21.5", server_tarball("1.21.5"))
    first = _install(game, "1.21.5")
    assert first["stage"] == "done"
    # A first install has no world to back up.
    assert first["backup_id"] is None
    cdn.publish("1.21.6", server_tarball("1.21.6"), md5_hex="f" * 32)
    failed = _install(game, "1.21.6")
    assert failed["error"]["code"] == "CHECKSUM_MISMATCH"
    running = _started(game)
    # The game itself says which version it is, and it runs from that version's directory.
    assert running["version"] == "1.21.5"
    assert running["installed_version"] == "1.21.5"
    assert _runs_from(running["pid"]) == str(versions / "1.21.5")


def test_restart_stops_the_old_server_and_starts_the_new_one_and_rollback_goes_back(
    game: TestClient, cdn: StubCdn, game_settings: Settings
) -> None:
    versions = game_settings.game_server_dir / "versions"
    cdn.publish("1.21.5", server_tarball("1.21.5"))
    _install(game, "1.21.5")
    old = _started(game)
    cdn.publish("1.21.6", server_tarball("1.21.6"))
    refused = game.post(INSTALL, json={"version": "1.21.6"}, headers=ADMIN)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "SERVER_RUNNING"
    assert status(game)["pid"] == old["pid"]
    op = _install(game, "1.21.6", restart=True)
    assert op["stage"] == "done", op
    # The world was backed up before the switch, by the running server, as it was then.
    backup = game.get(f"/api/v1alpha1/backups/{op['backup_id']}", headers=ADMIN).json()["data"]
    assert (backup["trigger"], backup["method"]) == ("pre_update", "genbackup")
    assert backup["game_version"] == "1.21.5"
    new = status(game)
    assert (new["state"], new["version"]) == ("running", "1.21.6")
    assert (new["installed_version"], new["previous_version"]) == ("1.21.6", "1.21.5")
    assert new["pid"] != old["pid"]
    assert _runs_from(new["pid"]) == str(versions / "1.21.6")
    # The old one was stopped the graceful way: /stop on its console, its world saved.
    assert new["last_exit"]["ended_by"] == "stop_command"
    assert new["last_exit"]["stop_reason"] == "Shutdown via server command"
    texts = console_texts(game)
    assert any(t.startswith("Handling Console Command /stop") for t in texts)
    assert "Stopped the server!" in texts
    kinds = [e["kind"] for e in reversed(events(game))]
    switch = ["stop_requested", "stopped", "version_switched", "start_requested", "spawned"]
    at = kinds.index("version_switched", kinds.index("ready"))
    assert kinds[at - 2 : at + 3] == switch
    refused = game.post(ROLLBACK, headers=ADMIN)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "SERVER_RUNNING"
    response = game.post(ROLLBACK, json={"restart": True}, headers=ADMIN)
    assert response.status_code == 202, response.text
    assert wait_install_sync(game, ADMIN)["stage"] == "done"
    back = status(game)
    assert (back["state"], back["version"], back["installed_version"]) == (
        "running",
        "1.21.5",
        "1.21.5",
    )
    assert _runs_from(back["pid"]) == str(versions / "1.21.5")


@pytest.mark.parametrize("timings", [{"server_start_timeout_seconds": 3}])
def test_a_new_version_that_never_becomes_ready_is_rolled_back_and_the_old_one_runs_again(
    game: TestClient, cdn: StubCdn, game_settings: Settings
) -> None:
    root = game_settings.game_server_dir
    cdn.publish("1.21.5", server_tarball("1.21.5"))
    _install(game, "1.21.5")
    old = _started(game)
    cdn.publish("1.21.6", server_tarball("1.21.6", mode="no_ready"))
    op = _install(game, "1.21.6", restart=True)
    assert op["stage"] == "failed"
    assert op["rolled_back"] is True
    assert op["error"]["code"] == "NEW_VERSION_NOT_READY"
    message = op["error"]["message"]
    assert "1.21.6 did not become ready: it was not ready within 3 s" in message
    assert "rolled back to 1.21.5, which is running again" in message
    back = status(game)
    assert (back["state"], back["version"]) == ("running", "1.21.5")
    # Exactly as before: 1.21.5 current with no previous, the failed version gone.
    assert (back["installed_version"], back["previous_version"]) == ("1.21.5", None)
    assert sorted(p.name for p in (root / "versions").iterdir()) == ["1.21.5"]
    assert (root / "current_version").read_text() == "1.21.5\n"
    assert back["pid"] != old["pid"]
    assert _runs_from(back["pid"]) == str(root / "versions" / "1.21.5")
    kinds = [e["kind"] for e in events(game)]
    assert "start_timeout" in kinds


@pytest.mark.parametrize("timings", [{"server_start_timeout_seconds": 60}])
def test_api_shutdown_during_a_switch_leaves_no_server_running(
    game_settings: Settings, cdn: StubCdn
) -> None:
    cdn.publish("1.21.5", server_tarball("1.21.5"))
    cdn.publish("1.21.6", server_tarball("1.21.6", mode="no_ready"))
    with TestClient(create_app(install_settings(game_settings, cdn))) as client:
        _install(client, "1.21.5")
        old = _started(client)["pid"]
        response = client.post(INSTALL, json={"version": "1.21.6", "restart": True}, headers=ADMIN)
        assert response.status_code == 202
        # The new version is up but never ready: the switch is waiting for it.
        new = wait_until(
            client, lambda s: s["state"] == "starting" and s["pid"] not in (None, old)
        )["pid"]
        # The old one was stopped for the switch and reaped.
        assert not psutil.pid_exists(old)
        child = psutil.Process(new)
    # The lifespan has ended without an error, and the new server did not outlive it.
    assert not child.is_running()
