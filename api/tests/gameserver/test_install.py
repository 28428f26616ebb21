"""Installing, updating and rolling back through the API, against a stub CDN (no server runs)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from tests.support.installs import INSTALL, ROLLBACK, SERVER, install_settings, wait_install
from tests.support.keys import ADMIN_KEY, MONITOR_KEY
from tests.support.mod_db import carryon_modinfo, zip_bytes
from tests.support.server_tarball import Entry, StubCdn, server_tarball, tree_digest
from tests.support.stub_server import Fault, StubServer
from tests.support.vs_wiring import running_app
from vintagestory_api.config import Settings


@pytest.fixture
def cdn() -> Iterator[StubCdn]:
    with StubServer.running() as stub:
        yield StubCdn(stub)


@pytest.fixture
def overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
async def api(
    settings: Settings, cdn: StubCdn, overrides: dict[str, Any]
) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(install_settings(settings, cdn, **overrides)) as (_, client):
        client.headers["X-API-Key"] = ADMIN_KEY
        yield client


def _server_dir(settings: Settings) -> Path:
    return settings.game_server_dir


async def _status(api: httpx.AsyncClient) -> dict[str, Any]:
    response = await api.get(SERVER)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def _install(api: httpx.AsyncClient, version: str, **body: Any) -> dict[str, Any]:
    response = await api.post(INSTALL, json={"version": version, **body})
    assert response.status_code == 202, response.text
    return await wait_install(api)


async def test_install_downloads_checks_unpacks_and_makes_the_version_current(
    api: httpx.AsyncClient, cdn: StubCdn, settings: Settings
) -> None:
    tarball = server_tarball("1.21.5")
    path = cdn.publish("1.21.5", tarball)
    assert (await api.get(INSTALL)).json()["data"] is None
    assert (await _status(api))["state"] == "not_installed"
    response = await api.post(INSTALL, json={"version": "stable"})
    assert response.status_code == 202, response.text
    begun = response.json()["data"]
    assert (begun["kind"], begun["requested"], begun["version"]) == ("install", "stable", "1.21.5")
    assert begun["stage"] == "downloading"
    op = await wait_install(api)
    assert op["stage"] == "done", op
    assert op["error"] is None
    assert op["bytes_done"] == op["bytes_total"] == len(tarball)
    assert op["percent"] == 100
    assert op["role"] == "admin"
    assert cdn.stub.count(path) == 1
    status = await _status(api)
    assert status["state"] == "stopped"
    assert (status["installed_version"], status["previous_version"]) == ("1.21.5", None)
    root = _server_dir(settings)
    assert os.readlink(root / "current") == "versions/1.21.5"
    assert (root / "current_version").read_text() == "1.21.5\n"
    assert (root / "versions" / "1.21.5" / "VintagestoryServer.dll").is_file()
    # Nothing left over: no download, no staging directory.
    assert [p.name for p in (root / "versions").iterdir()] == ["1.21.5"]
    # The versions API compares with what was installed.
    latest = (await api.get("/api/v1alpha1/versions/latest")).json()["data"]
    assert (latest["installed"], latest["update_available"]) == ("1.21.5", False)
    events = (await api.get(f"{SERVER}/events")).json()["data"]["events"]
    assert events[0]["kind"] == "version_switched"
    assert events[0]["detail"] == "1.21.5 (was none)"


def _bad(cdn: StubCdn, case: str) -> tuple[str, str]:
    """Publish 1.21.6 broken as `case`; the error code and a part of its message."""
    tarball = server_tarball("1.21.6")
    if case == "wrong_md5":
        cdn.publish("1.21.6", tarball, md5_hex="0" * 32)
        return "CHECKSUM_MISMATCH", f"the versions API publishes {'0' * 32}"
    entries = {
        "dotdot": (Entry("../evil.txt", data=b"x"), "'../evil.txt' leads out of the target"),
        "absolute": (Entry("/tmp/evil.txt", data=b"x"), "'/tmp/evil.txt' is an absolute path"),
        "symlink_outside": (
            Entry("Lib/out", "symlink", link="../../../outside"),
            "'Lib/out' is a symlink pointing outside the target directory",
        ),
    }
    if case in entries:
        entry, message = entries[case]
        cdn.publish("1.21.6", server_tarball("1.21.6", extra=[entry]))
        return "ARCHIVE_UNSAFE", message
    path = cdn.publish("1.21.6", tarball)
    faults = {
        "truncated": ("DOWNLOAD_FAILED", f"{len(tarball) // 2} of {len(tarball)} bytes"),
        "huge": ("DOWNLOAD_TOO_LARGE", "declares 52428800 bytes, more than the 1048576 byte"),
        "huge_undeclared": ("DOWNLOAD_TOO_LARGE", "sends more than the 1048576 byte limit"),
    }
    cdn.stub.path_faults[path] = cast(Fault, case)
    return faults[case]


BAD = ["wrong_md5", "truncated", "huge", "huge_undeclared", "dotdot", "absolute", "symlink_outside"]


@pytest.mark.parametrize("case", BAD)
async def test_a_failed_update_leaves_the_previous_install_current_and_whole(
    api: httpx.AsyncClient, cdn: StubCdn, settings: Settings, case: str
) -> None:
    cdn.publish("1.21.5", server_tarball("1.21.5"))
    assert (await _install(api, "1.21.5"))["stage"] == "done"
    root = _server_dir(settings)
    before = tree_digest(root)
    code, message = _bad(cdn, case)
    op = await _install(api, "1.21.6")
    assert op["stage"] == "failed"
    assert op["error"]["code"] == code, op
    assert message in op["error"]["message"]
    # Exactly as it was: current, its files, nothing half-done next to it, nothing outside.
    assert tree_digest(root) == before
    status = await _status(api)
    assert (status["installed_version"], status["state"]) == ("1.21.5", "stopped")
    assert not (root.parent / "outside").exists()


async def test_rollback_restores_the_previous_version_exactly(
    api: httpx.AsyncClient, cdn: StubCdn, settings: Settings
) -> None:
    root = _server_dir(settings)
    cdn.publish("1.21.5", server_tarball("1.21.5"))
    await _install(api, "1.21.5")
    first = tree_digest(root / "versions" / "1.21.5")
    cdn.publish("1.21.6", server_tarball("1.21.6"))
    await _install(api, "stable")
    status = await _status(api)
    assert (status["installed_version"], status["previous_version"]) == ("1.21.6", "1.21.5")
    response = await api.post(ROLLBACK)
    assert response.status_code == 202, response.text
    assert response.json()["data"]["kind"] == "rollback"
    op = await wait_install(api)
    assert (op["stage"], op["version"], op["from_version"]) == ("done", "1.21.5", "1.21.6")
    status = await _status(api)
    assert (status["installed_version"], status["previous_version"]) == ("1.21.5", "1.21.6")
    assert tree_digest(root / "versions" / "1.21.5") == first
    assert (root / "current_version").read_text() == "1.21.5\n"
    latest = (await api.get("/api/v1alpha1/versions/latest")).json()["data"]
    assert (latest["installed"], latest["update_available"]) == ("1.21.5", True)
    # A second rollback goes forward again.
    await api.post(ROLLBACK, json={"restart": False})
    await wait_install(api)
    assert (await _status(api))["installed_version"] == "1.21.6"


async def test_requests_are_checked_before_anything_begins(
    api: httpx.AsyncClient, cdn: StubCdn
) -> None:
    path = cdn.publish("1.21.5", server_tarball("1.21.5"))
    for bad in ["latest", "1.21", "1.21.6; rm -rf /", ""]:
        response = await api.post(INSTALL, json={"version": bad})
        assert response.status_code == 422, bad
        assert response.json()["error"]["message"].startswith("version: ")
    extra = await api.post(INSTALL, json={"version": "1.21.5", "force": True})
    assert extra.status_code == 422
    monitor = await api.post(
        INSTALL, json={"version": "1.21.5"}, headers={"X-API-Key": MONITOR_KEY}
    )
    assert monitor.status_code == 403
    unknown = await api.post(INSTALL, json={"version": "1.99.0"})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "VERSION_NOT_FOUND"
    assert "1.99.0 is in neither" in unknown.json()["error"]["message"]
    none = await api.post(ROLLBACK)
    assert none.status_code == 409
    assert none.json()["error"]["code"] == "NO_PREVIOUS_VERSION"
    cdn.stub.path_faults[path] = "hang"
    assert (await api.post(INSTALL, json={"version": "1.21.5"})).status_code == 202
    busy = await api.post(INSTALL, json={"version": "1.21.5"})
    assert busy.status_code == 409
    assert busy.json()["error"]["code"] == "INSTALL_IN_PROGRESS"
    assert "an install of 1.21.5 is in progress (downloading)" in busy.json()["error"]["message"]
    hung = await wait_install(api)
    assert hung["error"]["code"] == "DOWNLOAD_FAILED"
    assert "no data received within the read timeout" in hung["error"]["message"]
    cdn.stub.clear_faults()
    assert (await _install(api, "1.21.5"))["stage"] == "done"
    again = await api.post(INSTALL, json={"version": "stable"})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "VERSION_ALREADY_CURRENT"


@pytest.fixture
def dotnet_8(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A `dotnet` on PATH that lists only the .NET 8 runtime."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    dotnet = bin_dir / "dotnet"
    dotnet.write_text("#!/bin/sh\necho 'Microsoft.NETCore.App 8.0.11 [/usr/share/dotnet/shared]'\n")
    dotnet.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))


@pytest.mark.usefixtures("dotnet_8")
@pytest.mark.parametrize("overrides", [{"server_command": None}])
async def test_a_version_whose_runtime_is_missing_is_refused_without_touching_the_install(
    api: httpx.AsyncClient, cdn: StubCdn, settings: Settings
) -> None:
    cdn.publish("1.21.5", server_tarball("1.21.5"))
    path = cdn.publish("1.22.7", server_tarball("1.22.7"))
    assert (await _install(api, "1.21.5"))["stage"] == "done"
    root = _server_dir(settings)
    before = tree_digest(root)
    response = await api.post(INSTALL, json={"version": "1.22.7"})
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "DOTNET_RUNTIME_MISSING"
    assert "1.22.7 needs the .NET 10 runtime" in error["message"]
    assert cdn.stub.count(path) == 0
    assert tree_digest(root) == before


@pytest.fixture
def with_mod_database(cdn: StubCdn, overrides: dict[str, Any]) -> None:
    # The stub that is the CDN also answers as the mod database (real-shaped records).
    overrides["mod_api_url"] = f"{cdn.url}/api"


@pytest.mark.usefixtures("with_mod_database")
async def test_a_dry_run_lists_the_mods_the_new_version_breaks_and_changes_nothing(
    api: httpx.AsyncClient, cdn: StubCdn, settings: Settings
) -> None:
    cdn.publish("1.21.3", server_tarball("1.21.3"))
    assert (await _install(api, "1.21.3"))["stage"] == "done"
    mods = settings.game_data_dir / "Mods"
    mods.mkdir(parents=True, exist_ok=True)
    # Carry On 1.12.1 is tagged for 1.21.0-1.21.3: fine now, not verified for 1.21.6.
    (mods / "carryon-1.12.1.zip").write_bytes(zip_bytes(carryon_modinfo("1.12.1")))
    cdn.publish("1.21.6", server_tarball("1.21.6"))
    response = await api.post(INSTALL, json={"version": "1.21.6", "dry_run": True})
    assert response.status_code == 200, response.text
    op = response.json()["data"]
    assert (op["dry_run"], op["stage"], op["version"]) == (True, "done", "1.21.6")
    [carryon] = op["incompatible_mods"]
    assert (carryon["modid"], carryon["installed_version"]) == ("carryon", "1.12.1")
    assert carryon["compatibility"] == "not_verified"
    # Nothing was downloaded or switched, and the last real operation is still the one shown.
    assert not any("1.21.6" in path for path in cdn.stub.requests)
    assert (await _status(api))["installed_version"] == "1.21.3"
    shown = (await api.get(INSTALL)).json()["data"]
    assert (shown["version"], shown["dry_run"]) == ("1.21.3", False)
    # The real install lists the same before it goes ahead.
    op = await _install(api, "1.21.6")
    assert op["stage"] == "done"
    assert [m["modid"] for m in op["incompatible_mods"]] == ["carryon"]
