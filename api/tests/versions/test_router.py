from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from tests.support.damage import damage
from tests.support.keys import MONITOR_KEY
from tests.support.stub_server import FIXTURES, Fault, StubServer
from tests.support.vs_wiring import ADMIN, running_app, set_game_version, stub_settings, versions_of
from vintagestory_api.config import Settings
from vintagestory_api.versions.jobs import server_versions_check
from vintagestory_api.versions.service import CheckFailed

LATEST = "/api/v1alpha1/versions/latest"
VERSIONS = "/api/v1alpha1/versions"


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer.running() as server:
        yield server


@pytest.fixture
def vs_settings(settings: Settings, stub: StubServer) -> Settings:
    return stub_settings(settings, stub)


async def test_latest_shows_fixture_versions_and_installed_update(
    vs_settings: Settings, data_dir: Path
) -> None:
    set_game_version(data_dir, "1.22.6")
    async with running_app(vs_settings) as (app, client):
        result = await server_versions_check(versions_of(app))
        assert result["stable"]["latest"] == "1.22.7"
        assert result["unstable"]["latest"] == "1.22.7-rc.1"
        response = await client.get(LATEST, headers={"X-API-Key": MONITOR_KEY})
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["stable"] == "1.22.7"
    assert data["unstable"] == "1.22.7-rc.1"
    assert data["installed"] == "1.22.6"
    assert data["update_available"] is True
    assert data["checked_at"] is not None


async def test_versions_lists_channel_in_version_order(vs_settings: Settings) -> None:
    async with running_app(vs_settings) as (app, client):
        await server_versions_check(versions_of(app))
        stable = (await client.get(VERSIONS, headers=ADMIN)).json()["data"]
        unstable = (
            await client.get(VERSIONS, params={"channel": "unstable"}, headers=ADMIN)
        ).json()
    assert stable["channel"] == "stable"
    assert [v["version"] for v in stable["versions"]][:3] == ["1.22.7", "1.22.6", "1.22.5"]
    assert stable["versions"][-1]["version"] == "1.9.14"
    assert set(stable["versions"][0]) == {
        "version",
        "is_latest",
        "filename",
        "filesize",
        "md5",
        "url",
    }
    assert stable["last_check"]["status"] == "ok"
    assert stable["fetched_at"] is not None
    assert [v["version"] for v in unstable["data"]["versions"]][:2] == [
        "1.22.7-rc.1",
        "1.22.0-rc.10",
    ]


async def test_unknown_channel_is_a_422_envelope(vs_settings: Settings) -> None:
    async with running_app(vs_settings) as (_, client):
        response = await client.get(VERSIONS, params={"channel": "beta"}, headers=ADMIN)
    assert response.status_code == 422
    body = response.json()
    assert body["status"] == "error"
    assert body["error"]["code"] == "VALIDATION_ERROR"
    assert "channel" in body["error"]["message"]


async def test_versions_need_a_key(vs_settings: Settings) -> None:
    async with running_app(vs_settings) as (_, client):
        assert (await client.get(LATEST)).status_code == 401


async def test_new_version_is_logged_with_old_and_new(
    vs_settings: Settings, stub: StubServer
) -> None:
    stable = json.loads((FIXTURES / "stable.json").read_bytes())
    del stable["1.22.7"]
    stable["1.22.6"]["linuxserver"]["latest"] = 1
    stub.bodies["/stable.json"] = json.dumps(stable).encode()
    async with running_app(vs_settings) as (app, _):
        await server_versions_check(versions_of(app))
        del stub.bodies["/stable.json"]
        with capture_logs() as logs:
            result = await server_versions_check(versions_of(app))
    assert result["stable"]["changed"] is True
    assert result["stable"]["added"] == ["1.22.7"]
    assert result["unstable"]["changed"] is False
    events = [e for e in logs if e["event"] == "new_stable_version_detected"]
    assert events == [
        {
            "event": "new_stable_version_detected",
            "old": "1.22.6",
            "new": "1.22.7",
            "log_level": "info",
        }
    ]
    assert not [e for e in logs if e["event"] == "new_unstable_version_detected"]


async def test_failing_channel_keeps_its_data_and_spares_the_other(
    vs_settings: Settings, stub: StubServer
) -> None:
    async with running_app(vs_settings) as (app, client):
        await server_versions_check(versions_of(app))
        stub.path_faults["/unstable.json"] = "500"
        result = await server_versions_check(versions_of(app))
        unstable = (
            await client.get(VERSIONS, params={"channel": "unstable"}, headers=ADMIN)
        ).json()
        stable = (await client.get(VERSIONS, headers=ADMIN)).json()
    assert result["stable"]["status"] == "ok"
    assert result["unstable"]["status"] == "failed"
    assert "HTTP 500" in result["unstable"]["reason"]
    assert unstable["data"]["versions"][0]["version"] == "1.22.7-rc.1"
    assert unstable["data"]["last_check"]["status"] == "failed"
    assert stable["data"]["last_check"]["status"] == "ok"


FAULTS: list[Fault | None] = [
    "500",
    None,  # connection refused: the stub is stopped
    "hang",
    "drip",
    "invalid_json",
    "wrong_shape",
    "huge",
]


@pytest.mark.parametrize("fault", FAULTS, ids=[f or "refused" for f in FAULTS])
async def test_each_fault_fails_the_run_keeps_data_and_recovers(
    vs_settings: Settings, stub: StubServer, fault: Fault | None
) -> None:
    async with running_app(vs_settings) as (app, client):
        await server_versions_check(versions_of(app))
        if fault is None:
            stub.stop()
        else:
            stub.fault = fault
        started = time.monotonic()
        with pytest.raises(CheckFailed) as caught:
            await server_versions_check(versions_of(app))
        elapsed = time.monotonic() - started
        assert elapsed < vs_settings.http_request_deadline + 1
        assert "stable:" in str(caught.value)
        assert "unstable:" in str(caught.value)

        latest = (await client.get(LATEST, headers=ADMIN)).json()["data"]
        assert latest["stable"] == "1.22.7"
        listing = (await client.get(VERSIONS, headers=ADMIN)).json()["data"]
        assert len(listing["versions"]) == 20
        assert listing["last_check"]["status"] == "failed"
        assert listing["last_check"]["reason"]

        if fault is None:
            stub.start()
        stub.clear_faults()
        result = await server_versions_check(versions_of(app))
        assert result["stable"]["status"] == result["unstable"]["status"] == "ok"


async def test_healthz_stays_fast_while_a_check_hangs(settings: Settings, stub: StubServer) -> None:
    slow = stub_settings(settings, stub, http_read_timeout=3.0, http_request_deadline=5.0)
    stub.fault = "hang"
    async with running_app(slow) as (app, client):
        check = asyncio.create_task(server_versions_check(versions_of(app)))
        await asyncio.sleep(0.1)
        started = time.monotonic()
        response = await client.get("/healthz")
        assert response.status_code == 200
        assert time.monotonic() - started < 0.5
        assert not check.done()
        check.cancel()
        with pytest.raises(asyncio.CancelledError):
            await check


async def test_restart_with_stub_down_serves_cached_versions(
    vs_settings: Settings, stub: StubServer
) -> None:
    async with running_app(vs_settings) as (app, _):
        await server_versions_check(versions_of(app))
    stub.stop()
    async with running_app(vs_settings) as (_, client):
        latest = (await client.get(LATEST, headers=ADMIN)).json()["data"]
        listing = (await client.get(VERSIONS, headers=ADMIN)).json()["data"]
    assert latest["stable"] == "1.22.7"
    assert latest["unstable"] == "1.22.7-rc.1"
    assert listing["versions"][0]["version"] == "1.22.7"


async def test_corrupt_cache_is_kept_aside_and_service_starts_empty(
    vs_settings: Settings, data_dir: Path
) -> None:
    cache = data_dir / "state" / "versions-cache.json"
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(b'{"stable": {"versions": "nope"')
    with capture_logs() as logs:
        async with running_app(vs_settings) as (_, client):
            latest = (await client.get(LATEST, headers=ADMIN)).json()["data"]
    assert latest["stable"] is None
    assert latest["update_available"] is False
    assert any(e["event"] == "versions_cache_corrupt" for e in logs)
    assert list(cache.parent.glob("versions-cache.json.corrupt-*"))


async def test_cache_damaged_at_startup_stays_reported_after_a_refresh_rewrites_it(
    vs_settings: Settings, data_dir: Path
) -> None:
    cache = data_dir / "state" / "versions-cache.json"
    damage(cache, "directory")
    async with running_app(vs_settings) as (app, client):
        await server_versions_check(versions_of(app))
        entry = (await client.get("/healthz")).json()["data"]["state_files"][cache.name]
        assert cache.is_file()
    # The refresh (which runs at once at startup) must not hide that something broke the file.
    assert entry["status"] == "degraded"
    assert "kept as versions-cache.json.corrupt-" in entry["reason"]


async def test_failed_cache_write_is_reported_until_a_write_succeeds(
    vs_settings: Settings, data_dir: Path
) -> None:
    cache = data_dir / "state" / "versions-cache.json"
    async with running_app(vs_settings) as (app, client):
        # Nothing can be renamed over a directory that is not empty: the write fails for real.
        damage(cache, "directory")
        await server_versions_check(versions_of(app))
        failed = (await client.get("/healthz")).json()["data"]["state_files"][cache.name]
        (cache / "left-here").unlink()
        cache.rmdir()
        await server_versions_check(versions_of(app))
        saved = (await client.get("/healthz")).json()["data"]["state_files"][cache.name]
        latest = (await client.get(LATEST, headers=ADMIN)).json()["data"]
    assert failed["status"] == "degraded"
    assert "write failed" in failed["reason"]
    assert saved == {"status": "ok", "reason": None}
    assert latest["stable"] == "1.22.7"


async def test_before_any_check_everything_is_null(vs_settings: Settings) -> None:
    async with running_app(vs_settings) as (_, client):
        latest = (await client.get(LATEST, headers=ADMIN)).json()["data"]
        listing = (await client.get(VERSIONS, headers=ADMIN)).json()["data"]
    assert latest == {
        "stable": None,
        "unstable": None,
        "installed": None,
        "update_available": False,
        "checked_at": None,
        "status": "never_checked",
        "last_check": None,
    }
    assert listing["versions"] == []
    assert listing["last_check"] is None


async def test_openapi_documents_versions_and_mods_routes(vs_settings: Settings) -> None:
    async with running_app(vs_settings) as (_, client):
        spec = (await client.get("/openapi.json")).json()
    listing = spec["paths"]["/api/v1alpha1/versions"]["get"]
    assert listing["summary"]
    assert {"401", "422", "503"} <= set(listing["responses"])
    channel = next(p for p in listing["parameters"] if p["name"] == "channel")
    assert channel["schema"]["enum"] == ["stable", "unstable"]
    for path in ("/api/v1alpha1/versions/latest", "/api/v1alpha1/mods"):
        operation = spec["paths"][path]["get"]
        assert operation["summary"]
        assert (
            "ApiResponse"
            in operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        )
