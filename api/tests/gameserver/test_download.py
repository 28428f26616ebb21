"""The download step on its own: the CDN base replaced, the overall deadline, HTTP errors."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.stub_server import StubServer
from vintagestory_api.gameserver.download import DownloadLimits, download, rebase
from vintagestory_api.gameserver.errors import DownloadFailed

URL = "https://cdn.vintagestory.at/gamefiles/stable/vs_server_linux-x64_1.21.6.tar.gz"


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        (None, URL),
        (
            "http://127.0.0.1:8000",
            "http://127.0.0.1:8000/gamefiles/stable/vs_server_linux-x64_1.21.6.tar.gz",
        ),
        (
            "http://mirror.lan/vs/",
            "http://mirror.lan/vs/gamefiles/stable/vs_server_linux-x64_1.21.6.tar.gz",
        ),
    ],
)
def test_the_cdn_base_replaces_scheme_host_and_port(base: str | None, expected: str) -> None:
    assert rebase(URL, base) == expected


async def test_a_download_that_drips_fails_at_the_deadline(tmp_path: Path) -> None:
    with StubServer.running() as stub:
        stub.fault = "drip"
        stub.drip_interval = 0.05
        seen: list[int] = []
        async with httpx.AsyncClient() as client:
            with pytest.raises(DownloadFailed) as caught:
                await download(
                    client,
                    f"{stub.versions_url}/x.tar.gz",
                    tmp_path / "x.tar.gz",
                    DownloadLimits(max_bytes=1_000_000, deadline=0.5),
                    lambda done, _total: seen.append(done),
                )
    assert "not complete within 0.5 s (VS_INSTALL_DOWNLOAD_TIMEOUT)" in caught.value.message
    assert seen[0] == 0


async def test_an_http_error_names_the_status(tmp_path: Path) -> None:
    with StubServer.running() as stub:
        async with httpx.AsyncClient() as client:
            with pytest.raises(DownloadFailed) as caught:
                await download(
                    client,
                    f"{stub.versions_url}/missing.tar.gz",
                    tmp_path / "x.tar.gz",
                    DownloadLimits(max_bytes=1_000_000, deadline=5),
                    lambda done, total: None,
                )
    assert caught.value.message.endswith("/missing.tar.gz: HTTP 404")
