"""Installing, updating, enabling, disabling, removing and rolling back mods, against the mod
database stub on 127.0.0.1 serving real-shaped records and zips built around real modinfo files.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.support.keys import MONITOR_KEY
from tests.support.mod_db import (
    carryon_modinfo,
    derived_record,
    folder_bytes,
    modinfo,
    mods_folder,
    publish,
    smex_modinfo,
    zip_bomb,
    zip_bytes,
)
from tests.support.stub_server import StubServer
from tests.support.vs_wiring import ADMIN, mods_of, running_app, set_game_version, stub_settings
from vintagestory_api.config import Settings
from vintagestory_api.mods.jobs import mod_cache_refresh

MODS = "/api/v1alpha1/mods"
CARRYON = {v: zip_bytes(carryon_modinfo(v)) for v in ("1.12.1", "1.12.0", "1.11.0", "1.8.1")}


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer.running() as server:
        yield server


@pytest.fixture
def vs_settings(settings: Settings, stub: StubServer) -> Settings:
    return stub_settings(settings, stub)


@asynccontextmanager
async def api(
    settings: Settings, game_version: str | None = "1.21.3"
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    if game_version is not None:
        set_game_version(settings.data_dir, game_version)
    async with running_app(settings) as running:
        yield running


async def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def _error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "error"
    assert body["error"]["code"] == code, body
    message: str = body["error"]["message"]
    return message


def _zips(data_dir: Path) -> dict[str, bytes]:
    return folder_bytes(mods_folder(data_dir))


@pytest.mark.parametrize(
    "reference",
    [
        "carryon",
        890,
        "https://mods.vintagestory.at/carryon",
        # The page of an asset id: found through the mod list, then looked up by its mod id.
        "https://mods.vintagestory.at/show/mod/4405",
    ],
)
async def test_install_resolves_modid_numeric_id_and_page_url(
    vs_settings: Settings, stub: StubServer, reference: str | int
) -> None:
    publish(stub, "carryon", CARRYON)
    async with api(vs_settings) as (_, client):
        data = await _ok(await client.post(MODS, json={"mod": reference}, headers=ADMIN))
        listing = await _ok(await client.get(MODS, headers={"X-API-Key": MONITOR_KEY}))
    assert data["changes"] == [
        {
            "modid": "carryon",
            "action": "installed",
            "from_version": None,
            "to_version": "1.12.1",
            "file": "CarryOn-1.21.0_v1.12.1.zip",
            "compatibility": "verified",
            "reason": "carryon 1.12.1 installed",
        }
    ]
    # Nothing runs, so nothing needs a restart.
    assert data["restart_pending"] is False
    assert _zips(vs_settings.data_dir) == {"CarryOn-1.21.0_v1.12.1.zip": CARRYON["1.12.1"]}
    [mod] = listing["mods"]
    assert (mod["modid"], mod["version"], mod["enabled"]) == ("carryon", "1.12.1", True)
    # The install's lookup already fills in what the mod database says.
    assert mod["moddb"]["latest_compatible_version"] == "1.12.1"


async def test_same_minor_release_is_flagged_not_verified(
    vs_settings: Settings, stub: StubServer
) -> None:
    publish(stub, "carryon", CARRYON)
    async with api(vs_settings, game_version="1.21.6") as (_, client):
        data = await _ok(await client.post(MODS, json={"mod": "carryon"}, headers=ADMIN))
    [change] = data["changes"]
    assert (change["to_version"], change["compatibility"]) == ("1.12.1", "not_verified")


async def test_release_for_another_game_version_is_refused_listing_what_exists(
    vs_settings: Settings, stub: StubServer
) -> None:
    publish(stub, "carryon", CARRYON)
    async with api(vs_settings, game_version="1.22.3") as (_, client):
        message = _error(
            await client.post(MODS, json={"mod": "carryon"}, headers=ADMIN),
            409,
            "NO_COMPATIBLE_RELEASE",
        )
        asked = await client.post(MODS, json={"mod": "carryon", "version": "1.8.1"}, headers=ADMIN)
        forced = await client.post(
            MODS, json={"mod": "carryon", "version": "1.8.1", "force": True}, headers=ADMIN
        )
    assert "no release for game 1.22.3 (nor for 1.22.x)" in message
    assert "1.12.1 (1.21.0, 1.21.1, 1.21.2, 1.21.3)" in message
    assert "pass force=true" in _error(asked, 409, "NO_COMPATIBLE_RELEASE")
    [change] = (await _ok(forced))["changes"]
    assert (change["to_version"], change["compatibility"]) == ("1.8.1", "incompatible")


async def test_unknown_release_and_unknown_mod_are_404(
    vs_settings: Settings, stub: StubServer
) -> None:
    publish(stub, "carryon", CARRYON)
    async with api(vs_settings) as (_, client):
        release = await client.post(
            MODS, json={"mod": "carryon", "version": "9.9.9"}, headers=ADMIN
        )
        unknown = await client.post(MODS, json={"mod": "nosuchmod"}, headers=ADMIN)
        page = await client.post(
            MODS, json={"mod": "https://mods.vintagestory.at/nosuchpage"}, headers=ADMIN
        )
        bad = await client.post(MODS, json={"mod": "https://example.com/carryon"}, headers=ADMIN)
    assert "releases: 1.12.1, 1.12.0" in _error(release, 404, "RELEASE_NOT_FOUND")
    _error(unknown, 404, "MOD_NOT_IN_DATABASE")
    _error(page, 404, "MOD_NOT_IN_DATABASE")
    assert _error(bad, 422, "INVALID_MOD_REFERENCE").startswith("body.mod:")


async def test_update_replaces_the_old_version_and_rollback_restores_its_exact_bytes(
    vs_settings: Settings, stub: StubServer
) -> None:
    publish(stub, "carryon", CARRYON)
    data_dir = vs_settings.data_dir
    async with api(vs_settings) as (_, client):
        await _ok(
            await client.post(MODS, json={"mod": "carryon", "version": "1.11.0"}, headers=ADMIN)
        )
        await _ok(
            await client.post(MODS, json={"mod": "carryon", "version": "1.12.0"}, headers=ADMIN)
        )
        updated = await _ok(await client.post(f"{MODS}/carryon/update", headers=ADMIN))
        # Two versions of one mod never sit side by side in Mods.
        assert _zips(data_dir) == {"CarryOn-1.21.0_v1.12.1.zip": CARRYON["1.12.1"]}
        again = await _ok(await client.post(f"{MODS}/carryon/update", headers=ADMIN))
        detail = await _ok(await client.get(f"{MODS}/carryon", headers=ADMIN))
        first = await _ok(await client.post(f"{MODS}/carryon/rollback", headers=ADMIN))
        assert _zips(data_dir) == {"CarryOn-1.21.0_v1.12.0.zip": CARRYON["1.12.0"]}
        second = await _ok(await client.post(f"{MODS}/carryon/rollback", headers=ADMIN))
        assert _zips(data_dir) == {"CarryOn-1.21.0_v1.11.0.zip": CARRYON["1.11.0"]}
        none_left = await client.post(f"{MODS}/carryon/rollback", headers=ADMIN)
    assert updated["changes"][0]["reason"] == "carryon 1.12.0 → 1.12.1"
    assert again["changes"][0]["action"] == "unchanged"
    assert [k["version"] for k in detail["previous"]] == ["1.12.0", "1.11.0"]
    assert first["changes"][0]["reason"] == "carryon 1.12.1 → 1.12.0 (rollback)"
    assert second["changes"][0]["to_version"] == "1.11.0"
    _error(none_left, 409, "NO_PREVIOUS_VERSION")


@pytest.mark.parametrize(
    ("archive", "status", "code", "words"),
    [
        (zip_bytes(smex_modinfo("1.12.1")), 422, "MOD_ARCHIVE_MISMATCH", "names modid 'smex'"),
        (zip_bytes(carryon_modinfo("1.12.2")), 422, "MOD_ARCHIVE_MISMATCH", "version '1.12.2'"),
        (zip_bomb(carryon_modinfo("1.12.1")), 422, "MOD_ARCHIVE_UNSAFE", "zip bomb"),
        (b"<html>Not a zip</html>", 422, "MOD_ARCHIVE_INVALID", "not a zip archive"),
        (zip_bytes(None), 422, "MOD_ARCHIVE_INVALID", "no modinfo.json"),
        ("truncated", 502, "MOD_DOWNLOAD_FAILED", "download failed"),
    ],
    ids=["other_modid", "other_version", "zip_bomb", "not_a_zip", "no_modinfo", "truncated"],
)
async def test_bad_download_fails_clearly_and_leaves_mods_as_it_was(
    vs_settings: Settings,
    stub: StubServer,
    archive: bytes | str,
    status: int,
    code: str,
    words: str,
) -> None:
    good = {"1.12.0": CARRYON["1.12.0"]}
    published = publish(stub, "carryon", good)
    path = published.path_of("1.12.1")
    if archive == "truncated":
        stub.bodies[path] = CARRYON["1.12.1"]
        stub.path_faults[path] = "truncated"
    else:
        assert isinstance(archive, bytes)
        stub.bodies[path] = archive
    async with api(vs_settings) as (_, client):
        await _ok(
            await client.post(MODS, json={"mod": "carryon", "version": "1.12.0"}, headers=ADMIN)
        )
        before = _zips(vs_settings.data_dir)
        message = _error(await client.post(f"{MODS}/carryon/update", headers=ADMIN), status, code)
        after = _zips(vs_settings.data_dir)
    assert message.startswith("carryon 1.12.1: ")
    assert words in message
    assert after == before == {"CarryOn-1.21.0_v1.12.0.zip": CARRYON["1.12.0"]}
    assert folder_bytes(vs_settings.data_dir / "mods-staging") == {}


async def test_missing_dependencies_are_reported_installed_on_request_and_protect_removal(
    vs_settings: Settings, stub: StubServer
) -> None:
    publish(stub, "smex", {"0.9.6": zip_bytes(smex_modinfo("0.9.6"))})
    for modid, numeric in (("exlib", 9001), ("ppex", 9002)):
        record = derived_record("smex", modid=modid, numeric_id=numeric, versions=["0.1.2"])
        publish(stub, modid, {"0.1.2": zip_bytes(modinfo(modid, "0.1.2"))}, record=record)
    async with api(vs_settings, game_version="1.22.3") as (_, client):
        alone = await _ok(await client.post(MODS, json={"mod": "smex"}, headers=ADMIN))
        both = await _ok(
            await client.post(MODS, json={"mod": "smex", "with_dependencies": True}, headers=ADMIN)
        )
        refused = await client.delete(f"{MODS}/exlib", headers=ADMIN)
        refused_disable = await client.post(f"{MODS}/exlib/disable", headers=ADMIN)
        detail = await _ok(await client.get(f"{MODS}/exlib", headers=ADMIN))
        forced = await _ok(
            await client.delete(f"{MODS}/exlib", params={"force": True}, headers=ADMIN)
        )
    assert [
        (m["modid"], m["required_version"], m["installed_version"])
        for m in alone["missing_dependencies"]
    ] == [("exlib", "0.1.0", None), ("ppex", "0.1.0", None)]
    assert [(c["modid"], c["to_version"]) for c in both["changes"]] == [
        ("smex", "0.9.6"),
        ("exlib", "0.1.2"),
        ("ppex", "0.1.2"),
    ]
    assert both["missing_dependencies"] == []
    assert "required by smex" in _error(refused, 409, "MOD_REQUIRED_BY")
    _error(refused_disable, 409, "MOD_REQUIRED_BY")
    assert detail["required_by"] == ["smex"]
    assert forced["changes"][0]["action"] == "removed"
    assert sorted(_zips(vs_settings.data_dir)) == ["ppex_0.1.2.zip", "smex_0.9.6.zip"]


async def test_update_all_applies_every_update_of_the_last_check_and_lists_failures(
    vs_settings: Settings, stub: StubServer
) -> None:
    publish(stub, "carryon", CARRYON)
    smithing = {v: zip_bytes(_smithing_modinfo(v)) for v in ("1.8.2", "1.8.3")}
    published = publish(stub, "smithingplus", {"1.8.2": smithing["1.8.2"]})
    # The newest Smithing Plus file is damaged: its update fails, Carry On's still happens.
    stub.bodies[published.path_of("1.8.3")] = b"garbage"
    async with api(vs_settings) as (app, client):
        for mod, version in (("carryon", "1.12.0"), ("smithingplus", "1.8.2")):
            await _ok(await client.post(MODS, json={"mod": mod, "version": version}, headers=ADMIN))
        await mod_cache_refresh(mods_of(app))
        data = await _ok(await client.post(f"{MODS}/update", headers=ADMIN))
        nothing_left = await _ok(await client.post(f"{MODS}/update", headers=ADMIN))
    assert [(c["modid"], c["from_version"], c["to_version"]) for c in data["changes"]] == [
        ("carryon", "1.12.0", "1.12.1")
    ]
    [failure] = data["failed"]
    assert (failure["modid"], failure["code"]) == ("smithingplus", "MOD_ARCHIVE_INVALID")
    assert sorted(_zips(vs_settings.data_dir)) == [
        "CarryOn-1.21.0_v1.12.1.zip",
        "smithingplus_1.8.2.zip",
    ]
    assert [f["modid"] for f in nothing_left["failed"]] == ["smithingplus"]
    assert nothing_left["changes"] == []


async def test_disable_moves_the_mod_where_the_game_does_not_read_and_enable_back(
    vs_settings: Settings, stub: StubServer
) -> None:
    publish(stub, "carryon", CARRYON)
    data_dir = vs_settings.data_dir
    async with api(vs_settings) as (_, client):
        await _ok(await client.post(MODS, json={"mod": "carryon"}, headers=ADMIN))
        disabled = await _ok(await client.post(f"{MODS}/carryon/disable", headers=ADMIN))
        listed = (await _ok(await client.get(MODS, headers=ADMIN)))["mods"]
        in_mods = _zips(data_dir)
        in_disabled = folder_bytes(data_dir / "mods-disabled")
        again = await _ok(await client.post(f"{MODS}/carryon/disable", headers=ADMIN))
        enabled = await _ok(await client.post(f"{MODS}/carryon/enable", headers=ADMIN))
        unknown = await client.post(f"{MODS}/nosuchmod/enable", headers=ADMIN)
    assert disabled["changes"][0]["reason"] == "carryon disabled"
    assert in_mods == {}
    assert in_disabled == {"CarryOn-1.21.0_v1.12.1.zip": CARRYON["1.12.1"]}
    assert [(m["modid"], m["enabled"]) for m in listed] == [("carryon", False)]
    assert again["changes"][0]["action"] == "unchanged"
    assert enabled["changes"][0]["action"] == "enabled"
    assert _zips(data_dir) == {"CarryOn-1.21.0_v1.12.1.zip": CARRYON["1.12.1"]}
    _error(unknown, 404, "MOD_NOT_INSTALLED")


async def test_upload_installs_a_mod_not_in_the_database_with_the_same_checks(
    vs_settings: Settings,
) -> None:
    archive = zip_bytes(carryon_modinfo("1.12.1"))
    async with api(vs_settings) as (_, client):
        data = await _ok(
            await client.post(
                f"{MODS}/upload",
                files={"file": ("CarryOn-custom.zip", archive, "application/zip")},
                headers=ADMIN,
            )
        )
        bomb = await client.post(
            f"{MODS}/upload",
            files={"file": ("bomb.zip", zip_bomb(carryon_modinfo("2.0.0")), "application/zip")},
            headers=ADMIN,
        )
        text = await client.post(
            f"{MODS}/upload", files={"file": ("notes.zip", b"hello", "text/plain")}, headers=ADMIN
        )
        malformed = await client.post(
            f"{MODS}/upload",
            content=b"--b\r\nTrue--b--\r\n",
            headers={**ADMIN, "Content-Type": "multipart/form-data; boundary=b"},
        )
        no_file = await client.post(f"{MODS}/upload", data={"other": "x"}, headers=ADMIN)
    assert data["changes"][0]["reason"] == "carryon 1.12.1 installed"
    assert "zip bomb" in _error(bomb, 422, "MOD_ARCHIVE_UNSAFE")
    assert _error(text, 422, "MOD_ARCHIVE_INVALID") == "upload notes.zip: not a zip archive"
    assert "not valid multipart/form-data" in _error(malformed, 422, "VALIDATION_ERROR")
    assert _error(no_file, 422, "VALIDATION_ERROR").startswith("file:")
    assert _zips(vs_settings.data_dir) == {"CarryOn-custom.zip": archive}


async def test_a_second_change_while_one_runs_is_refused(
    vs_settings: Settings, stub: StubServer
) -> None:
    published = publish(stub, "carryon", CARRYON)
    stub.path_faults[published.path_of("1.12.1")] = "hang"
    async with api(vs_settings) as (_, client):
        first = asyncio.create_task(client.post(MODS, json={"mod": "carryon"}, headers=ADMIN))
        deadline = asyncio.get_running_loop().time() + 5
        while stub.count(published.path_of("1.12.1")) == 0:
            assert asyncio.get_running_loop().time() < deadline, "the download never started"
            await asyncio.sleep(0.01)
        second = await client.delete(f"{MODS}/carryon", headers=ADMIN)
        stub.release()
        first_answer = await first
    assert "(install carryon) is in progress" in _error(second, 409, "MOD_OPERATION_IN_PROGRESS")
    _error(first_answer, 502, "MOD_DOWNLOAD_FAILED")


async def test_compatibility_lists_what_a_game_version_would_break(
    vs_settings: Settings, stub: StubServer
) -> None:
    publish(stub, "carryon", CARRYON)
    publish(stub, "smex", {"0.9.6": zip_bytes(smex_modinfo("0.9.6"))})
    async with api(vs_settings, game_version="1.22.3") as (_, client):
        await _ok(await client.post(MODS, json={"mod": "smex"}, headers=ADMIN))
        await _ok(
            await client.post(
                MODS, json={"mod": "carryon", "version": "1.12.1", "force": True}, headers=ADMIN
            )
        )
        report = await _ok(
            await client.get(
                f"{MODS}/compatibility",
                params={"game_version": "1.21.3"},
                headers={"X-API-Key": MONITOR_KEY},
            )
        )
    by_id = {m["modid"]: m for m in report["mods"]}
    assert report["game_version"] == "1.21.3"
    # smex needs game 1.22.0 (its modinfo.json); carryon 1.12.1 is tagged for 1.21.3: fine.
    assert set(by_id) == {"smex"}
    assert by_id["smex"]["compatibility"] == "incompatible"
    assert by_id["smex"]["compatible_release"] is None


def _smithing_modinfo(version: str) -> bytes:
    return modinfo("smithingplus", version).replace(b'"1.22.0"', b'"1.21.0"')
