from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.keys import MONITOR_KEY
from tests.support.stub_server import FIXTURES, Fault, StubServer
from tests.support.vs_wiring import (
    ADMIN,
    install_fixture_mods,
    mod_zip,
    mods_of,
    running_app,
    set_game_version,
    stub_settings,
)
from vintagestory_api.config import Settings
from vintagestory_api.kit.http import JsonFetcher
from vintagestory_api.mods.jobs import mod_cache_refresh
from vintagestory_api.mods.service import ModRefreshFailed, ModsService

MODS = "/api/v1alpha1/mods"


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer.running() as server:
        yield server


@pytest.fixture
def vs_settings(settings: Settings, stub: StubServer) -> Settings:
    return stub_settings(settings, stub)


def _by_id(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["modid"]: m for m in body["data"]["mods"]}


async def test_mods_show_latest_and_updates_for_installed_game_version(
    vs_settings: Settings, data_dir: Path, stub: StubServer
) -> None:
    install_fixture_mods(data_dir, game_version="1.22.3")
    async with running_app(vs_settings) as (app, client):
        result = await mod_cache_refresh(mods_of(app))
        body = (await client.get(MODS, headers={"X-API-Key": MONITOR_KEY})).json()
    assert result["refreshed"] == 2
    assert result["failed"] == result["not_found"] == 0
    assert result["updates_available"] == 1
    assert body["data"]["game_version"] == "1.22.3"
    mods = _by_id(body)
    carryon, smex = mods["carryon"], mods["smex"]
    assert set(carryon) == {
        "modid",
        "name",
        "version",
        "side",
        "file",
        "enabled",
        "dependencies",
        "error",
        "moddb",
    }
    assert carryon["enabled"] is True
    assert smex["dependencies"] == {"game": "1.22.0", "exlib": "0.1.0", "ppex": "0.1.0"}
    assert (carryon["name"], carryon["version"], carryon["file"]) == (
        "Carry On",
        "1.12.1",
        "CarryOn-1.21.0_v1.12.1.zip",
    )
    assert carryon["moddb"]["latest_version"] == "1.12.1"
    # Carry On has no release tagged for 1.22.x.
    assert carryon["moddb"]["latest_compatible_version"] is None
    assert carryon["moddb"]["update_available"] is False
    assert carryon["moddb"]["url"] == f"{stub.versions_url}/carryon"
    assert carryon["moddb"]["downloads"] == 635000
    assert smex["moddb"]["latest_version"] == "0.9.6"
    assert smex["moddb"]["latest_compatible_version"] == "0.9.6"
    assert smex["moddb"]["update_available"] is True
    assert smex["moddb"]["status"] == "found"
    assert smex["moddb"]["fetched_at"] is not None
    assert body["data"]["last_check"]["status"] == "ok"


async def test_compatibility_follows_the_game_version(
    vs_settings: Settings, data_dir: Path
) -> None:
    mods_dir = install_fixture_mods(data_dir, game_version="1.21.1")
    mod_zip(
        mods_dir / "smithingplus.zip",
        b'{"modid": "smithingplus", "version": "1.7.1", "name": "S+"}',
    )
    async with running_app(vs_settings) as (app, client):
        await mod_cache_refresh(mods_of(app))
        mods = _by_id((await client.get(MODS, headers=ADMIN)).json())
    assert mods["smithingplus"]["moddb"]["latest_compatible_version"] == "1.8.3"
    assert mods["smithingplus"]["moddb"]["update_available"] is True
    assert mods["carryon"]["moddb"]["latest_compatible_version"] == "1.12.1"
    assert mods["carryon"]["moddb"]["update_available"] is False
    assert mods["smex"]["moddb"]["latest_compatible_version"] is None
    assert mods["smex"]["moddb"]["update_available"] is False


async def test_before_first_refresh_moddb_is_null(vs_settings: Settings, data_dir: Path) -> None:
    install_fixture_mods(data_dir, game_version=None)
    async with running_app(vs_settings) as (_, client):
        body = (await client.get(MODS, headers=ADMIN)).json()["data"]
    assert body["game_version"] is None
    assert body["last_check"] is None
    assert [m["moddb"] for m in body["mods"]] == [None, None]


async def test_unknown_mod_is_marked_not_found_and_broken_files_are_listed(
    vs_settings: Settings, data_dir: Path
) -> None:
    mods_dir = install_fixture_mods(data_dir, game_version="1.22.3")
    mod_zip(mods_dir / "mystery.zip", b'{"modid": "nosuchmod", "version": "1.0.0"}')
    (mods_dir / "broken.zip").write_bytes(b"not a zip")
    (mods_dir / "Library.dll").write_bytes(b"MZ")
    async with running_app(vs_settings) as (app, client):
        result = await mod_cache_refresh(mods_of(app))
        body = (await client.get(MODS, headers=ADMIN)).json()
    assert result["not_found"] == 1
    assert result["refreshed"] == 2
    assert result["looked_up"] == 3
    files = {m["file"]: m for m in body["data"]["mods"]}
    assert files["mystery.zip"]["moddb"]["status"] == "not_found"
    assert files["mystery.zip"]["moddb"]["latest_version"] is None
    assert files["broken.zip"]["error"].startswith("not a readable zip")
    assert files["broken.zip"]["moddb"] is None
    assert files["Library.dll"]["modid"] is None
    assert files["Library.dll"]["moddb"] is None


async def test_one_failing_mod_keeps_its_last_good_data(
    vs_settings: Settings, data_dir: Path, stub: StubServer
) -> None:
    install_fixture_mods(data_dir, game_version="1.22.3")
    async with running_app(vs_settings) as (app, client):
        await mod_cache_refresh(mods_of(app))
        stub.path_faults["/api/mod/smex"] = "invalid_json"
        result = await mod_cache_refresh(mods_of(app))
        body = (await client.get(MODS, headers=ADMIN)).json()
    assert (result["refreshed"], result["failed"]) == (1, 1)
    smex = _by_id(body)["smex"]["moddb"]
    assert smex["latest_version"] == "0.9.6"
    assert smex["update_available"] is True
    assert smex["error"].startswith("invalid JSON")
    assert _by_id(body)["carryon"]["moddb"]["error"] is None
    assert body["data"]["last_check"] == {
        "status": "ok",
        "reason": "1 of 2 lookups failed",
        "checked_at": body["data"]["last_check"]["checked_at"],
    }


FAULTS: list[Fault | None] = ["500", None, "hang", "drip", "invalid_json", "wrong_shape", "huge"]


@pytest.mark.parametrize("fault", FAULTS, ids=[f or "refused" for f in FAULTS])
async def test_each_fault_fails_the_run_keeps_data_and_recovers(
    vs_settings: Settings, data_dir: Path, stub: StubServer, fault: Fault | None
) -> None:
    install_fixture_mods(data_dir, game_version="1.22.3")
    async with running_app(vs_settings) as (app, client):
        await mod_cache_refresh(mods_of(app))
        if fault is None:
            stub.stop()
        else:
            stub.fault = fault
        started = time.monotonic()
        with pytest.raises(ModRefreshFailed, match="all 2 lookups failed"):
            await mod_cache_refresh(mods_of(app))
        assert time.monotonic() - started < vs_settings.http_request_deadline + 1

        body = (await client.get(MODS, headers=ADMIN)).json()["data"]
        assert body["last_check"]["status"] == "failed"
        smex = _by_id({"data": body})["smex"]["moddb"]
        assert smex["latest_version"] == "0.9.6"
        assert smex["error"]

        if fault is None:
            stub.start()
        stub.clear_faults()
        result = await mod_cache_refresh(mods_of(app))
        assert result["refreshed"] == 2
        body = (await client.get(MODS, headers=ADMIN)).json()["data"]
        assert _by_id({"data": body})["smex"]["moddb"]["error"] is None


async def test_unreachable_database_does_not_wait_once_per_mod(
    vs_settings: Settings, data_dir: Path, stub: StubServer
) -> None:
    mods_dir = data_dir / "serverdata" / "Mods"
    for n in range(30):
        mod_zip(mods_dir / f"m{n}.zip", f'{{"modid": "mod{n}", "version": "1.0.0"}}')
    stub.fault = "hang"
    async with running_app(vs_settings) as (app, _):
        started = time.monotonic()
        with pytest.raises(ModRefreshFailed, match="all 30 lookups failed"):
            await mod_cache_refresh(mods_of(app))
        # One round of read timeouts, not 30 / concurrency rounds.
        assert time.monotonic() - started < 2 * vs_settings.http_read_timeout + 0.5
    assert stub.count("/api/mod/mod0") <= 1


async def test_restart_with_stub_down_serves_cached_mods(
    vs_settings: Settings, data_dir: Path, stub: StubServer
) -> None:
    install_fixture_mods(data_dir, game_version="1.22.3")
    async with running_app(vs_settings) as (app, _):
        await mod_cache_refresh(mods_of(app))
    stub.stop()
    async with running_app(vs_settings) as (_, client):
        mods = _by_id((await client.get(MODS, headers=ADMIN)).json())
    assert mods["smex"]["moddb"]["latest_version"] == "0.9.6"
    assert mods["smex"]["moddb"]["update_available"] is True
    assert mods["carryon"]["moddb"]["latest_version"] == "1.12.1"


class _CountingFetcher(JsonFetcher):
    """Answers from the fixtures after a short pause, recording how many calls overlap."""

    def __init__(self) -> None:
        super().__init__(httpx.AsyncClient())
        self.in_flight = 0
        self.peak = 0

    async def get_json(self, url: str) -> Any:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(0.01)
            return {"statuscode": "404"} if "smex" not in url else _smex()
        finally:
            self.in_flight -= 1


def _smex() -> Any:
    import json

    return json.loads((FIXTURES / "mod-smex.json").read_bytes())


async def test_lookups_are_bounded_in_concurrency(data_dir: Path) -> None:
    mods_dir = data_dir / "serverdata" / "Mods"
    for n in range(12):
        mod_zip(mods_dir / f"m{n}.zip", f'{{"modid": "mod{n}", "version": "1.0.0"}}')
    fetcher = _CountingFetcher()
    service = ModsService(fetcher, api_url="http://db/api", data_dir=data_dir, concurrency=3)
    result = await service.refresh()
    assert result["not_found"] == 12
    assert fetcher.peak == 3


async def test_corrupt_mod_cache_is_kept_aside(data_dir: Path) -> None:
    cache = data_dir / "state" / "mod-cache.json"
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text('{"mods": {"x": {"status": "bogus"}}}')
    set_game_version(data_dir, "1.22.3")
    service = ModsService(_CountingFetcher(), api_url="http://db/api", data_dir=data_dir)
    listing = await service.mod_list()
    assert listing.last_check is None
    assert list(cache.parent.glob("mod-cache.json.corrupt-*"))


class _StallingFetcher(_CountingFetcher):
    async def get_json(self, url: str) -> Any:
        if "mod1" in url:
            await asyncio.sleep(30)
        return {"statuscode": "404"}


async def test_refresh_budget_ends_a_slow_refresh_and_keeps_what_it_got(data_dir: Path) -> None:
    mods_dir = data_dir / "serverdata" / "Mods"
    for n in range(3):
        mod_zip(mods_dir / f"m{n}.zip", f'{{"modid": "mod{n}", "version": "1.0.0"}}')
    service = ModsService(
        _StallingFetcher(), api_url="http://db/api", data_dir=data_dir, refresh_budget=0.2
    )
    result = await service.refresh()
    assert (result["not_found"], result["failed"]) == (2, 1)
    listing = {m.modid: m for m in (await service.mod_list()).mods}
    assert listing["mod1"].moddb is not None
    assert listing["mod1"].moddb.error == "refresh time budget used up before this lookup"
