"""HTTP edge cases against the real served process (uvicorn on 127.0.0.1): oversized bodies and
URLs, HEAD and trailing slashes. One server for the module: these requests change no state."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support.keys import ADMIN_KEY, MONITOR_KEY
from tests.support.server_process import ServerProcess

PREVIEW = "/api/v1alpha1/triggers/preview"
MONITOR = {"X-API-Key": MONITOR_KEY, "Content-Type": "application/json"}
MIB = 1024 * 1024
# Far more than the 1 MiB cap, and more than the loopback socket buffers absorb, so a server
# reading it all is caught both by the bytes the client got to send and by its memory.
UPLOAD = 64 * MIB


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir: Path = tmp_path_factory.mktemp("http") / "data"
    proc = ServerProcess(
        data_dir,
        env={
            "VS_API_KEY_ADMIN": ADMIN_KEY,
            "VS_API_KEY_MONITOR": MONITOR_KEY,
            # Nothing leaves the machine: the startup version check is refused at once.
            "VS_VERSIONS_URL": "http://127.0.0.1:9",
            "VS_MOD_API_URL": "http://127.0.0.1:9/api",
        },
    )
    try:
        proc.wait_healthy()
        yield proc
    finally:
        proc.kill()


class _Upload:
    """A request body produced on demand, counting how much of it the client got to send."""

    def __init__(self, total: int, chunk: int = 64 * 1024) -> None:
        self.total = total
        self.chunk = chunk
        self.produced = 0

    def __iter__(self) -> Iterator[bytes]:
        while self.produced < self.total:
            self.produced += self.chunk
            yield b" " * self.chunk


def _rss(server: ServerProcess) -> int:
    return int(psutil.Process(server.proc.pid).memory_info().rss)


@pytest.mark.parametrize("declared", [False, True], ids=["chunked", "content-length"])
def test_a_body_over_the_cap_is_refused_without_being_read(
    server: ServerProcess, declared: bool
) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        # Warm up the route, so that what it allocates once is not counted below.
        assert http.post(PREVIEW, json={"cron": "0 4 * * *"}, headers=MONITOR).is_success
        before = _rss(server)
        upload = _Upload(UPLOAD)
        headers = {**MONITOR, "Content-Length": str(UPLOAD)} if declared else MONITOR
        response = http.post(PREVIEW, content=iter(upload), headers=headers)
        grown = _rss(server) - before
        assert response.status_code == 413, response.text
        assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
        assert response.headers["X-Request-ID"]
        # The server stopped reading: most of the body was never even sent.
        assert upload.produced < UPLOAD // 4, upload.produced
        assert grown < 10 * MIB, grown
        # The service goes on serving.
        assert http.get("/healthz").status_code == 200


@pytest.mark.parametrize(
    ("target", "headers", "status", "code"),
    [
        ("/healthz?pad=" + "a" * 200_000, {}, 414, "URI_TOO_LONG"),
        ("/healthz", {"X-Padding": "a" * 100_000}, 431, "REQUEST_HEADERS_TOO_LARGE"),
    ],
    ids=["url", "headers"],
)
def test_a_long_request_head_is_answered_not_reset(
    server: ServerProcess, target: str, headers: dict[str, str], status: int, code: str
) -> None:
    # http.client, because httpx refuses to build a URL this long.
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request("GET", target, headers=headers)
        response = connection.getresponse()
        body = json.loads(response.read())
    finally:
        connection.close()
    assert response.status == status
    assert body["error"]["code"] == code
    assert response.getheader("X-Request-ID")


def test_head_of_healthz_answers_like_get(server: ServerProcess) -> None:
    # What `wget --spider` and many container health checks send.
    response = httpx.head(f"{server.base_url}/healthz", timeout=5)
    assert response.status_code == 200
    assert response.content == b""


def test_a_trailing_slash_is_not_redirected(server: ServerProcess) -> None:
    response = httpx.get(f"{server.base_url}/healthz/", headers={"Host": "evil.example"}, timeout=5)
    assert response.status_code == 404
    assert "location" not in response.headers
    assert response.json()["error"]["code"] == "NOT_FOUND"
