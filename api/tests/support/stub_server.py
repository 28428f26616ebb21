"""A real HTTP server on 127.0.0.1 standing in for the Vintage Story APIs, with switchable faults.

It serves `tests/fixtures/vintagestory/`: `/stable.json`, `/unstable.json`, `/api/mods`
(`mods-search.json`) and `/api/mod/{modid}` (`mod-{modid}.json`, else the database's "not
found" answer); `bodies` adds or replaces paths (mod database records, release zips, a game
server tarball as the CDN would serve it). A fault set
for a path (or for every path) replaces the normal answer; `stop()` gives "connection refused"
on the same port and `start()` brings the server back.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "vintagestory"

Fault = Literal[
    "500",  # HTTP 500 every time
    "hang",  # reads the request, never answers
    "drip",  # declares a body, then sends one byte every `drip_interval` seconds
    "invalid_json",
    "wrong_shape",  # valid JSON that is neither a versions list nor a mod answer
    "huge",  # a 50 MiB body with its Content-Length declared
    "huge_undeclared",  # a 50 MiB body without Content-Length (ends when the connection closes)
    "truncated",  # the path's body declared in full, half of it sent, then the connection closed
]

HUGE_BYTES = 50 * 1024 * 1024
# Longest any stalled handler waits; stop() releases them at once.
_MAX_STALL_SECONDS = 30.0


class StubServer:
    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        self.fault: Fault | None = None
        self.path_faults: dict[str, Fault] = {}
        self.bodies: dict[str, bytes] = {}
        self.drip_interval = 2.0
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def versions_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def mod_api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> None:
        self._release.clear()
        server = ThreadingHTTPServer(("127.0.0.1", self.port), _Handler)
        server.daemon_threads = True
        server.stub = self  # type: ignore[attr-defined]  # read back by the handler
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def release(self) -> None:
        """End every stall now (and any later one at once), as `stop()` does, without stopping."""
        self._release.set()

    def clear_faults(self) -> None:
        self.fault = None
        self.path_faults.clear()

    def count(self, path: str) -> int:
        with self._lock:
            return sum(1 for seen in self.requests if seen == path)

    def record(self, path: str) -> None:
        with self._lock:
            self.requests.append(path)

    def stall(self, seconds: float) -> bool:
        """Wait up to `seconds`; True when the server is stopping."""
        return self._release.wait(min(seconds, _MAX_STALL_SECONDS))

    @classmethod
    @contextmanager
    def running(cls) -> Iterator[StubServer]:
        stub = cls()
        stub.start()
        try:
            yield stub
        finally:
            stub.stop()


class _Handler(BaseHTTPRequestHandler):
    # Without keep-alive a body may end at connection close, which `huge_undeclared` needs.
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        stub: StubServer = self.server.stub  # type: ignore[attr-defined]
        path = self.path.split("?", 1)[0]
        stub.record(path)
        fault = stub.path_faults.get(path, stub.fault)
        try:
            if fault is None:
                self._normal(stub, path)
            elif fault == "truncated":
                body = stub.bodies.get(path, b"{}")
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
            else:
                self._fault(stub, fault, path)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, which is what several faults are for

    def _normal(self, stub: StubServer, path: str) -> None:
        if path in stub.bodies:
            self._send(200, stub.bodies[path])
            return
        if path == "/api/mods":
            self._send(200, (FIXTURES / "mods-search.json").read_bytes())
            return
        if path in ("/stable.json", "/unstable.json"):
            self._send(200, (FIXTURES / path.lstrip("/")).read_bytes())
            return
        match = re.fullmatch(r"/api/mod/([A-Za-z0-9_-]+)", path)
        if match:
            fixture = FIXTURES / f"mod-{match[1]}.json"
            if not fixture.is_file() or match[1] == "notfound":
                fixture = FIXTURES / "mod-notfound.json"
            self._send(200, fixture.read_bytes())
            return
        self._send(404, b'{"error": "no such path"}')

    def _fault(self, stub: StubServer, fault: Fault, path: str) -> None:
        if fault == "500":
            self._send(500, b"internal server error", content_type="text/plain")
        elif fault == "hang":
            stub.stall(_MAX_STALL_SECONDS)
        elif fault == "drip":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(1000):
                self.wfile.write(b" ")
                self.wfile.flush()
                if stub.stall(stub.drip_interval):
                    return
        elif fault == "invalid_json":
            self._send(200, b'{"1.22.7": {"linuxserver": ')
        elif fault == "wrong_shape":
            self._send(200, b'{"unexpected": [1, 2, 3]}')
        else:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if fault == "huge":
                self.send_header("Content-Length", str(HUGE_BYTES))
            self.end_headers()
            chunk = b" " * (1024 * 1024)
            for _ in range(HUGE_BYTES // len(chunk)):
                self.wfile.write(chunk)

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
