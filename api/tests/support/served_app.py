"""An app served by a real uvicorn in a thread of the test process, on 127.0.0.1.

Cheaper than an API subprocess (no interpreter start, no import), yet clients talk to it over
real sockets, WebSockets included, and its lifespan runs as it does in the service. The port is
bound before uvicorn starts, so a client may connect at once: the connection waits in the
listen backlog until the startup is done.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn
from fastapi import FastAPI


class ServedApp:
    def __init__(self, app: FastAPI, *, startup_timeout: float = 30.0) -> None:
        self.app = app
        self._startup_timeout = startup_timeout
        self._socket = socket.create_server(("127.0.0.1", 0))
        port: int = self._socket.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}"
        config = uvicorn.Config(
            app, lifespan="on", log_config=None, access_log=False, timeout_graceful_shutdown=10
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def __enter__(self) -> ServedApp:
        self._thread.start()
        deadline = time.monotonic() + self._startup_timeout
        while not self.server.started:
            if not self._thread.is_alive():
                raise AssertionError("uvicorn exited during startup (see the captured log)")
            if time.monotonic() > deadline:
                raise AssertionError("uvicorn did not finish its startup in time")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Shut down as on SIGTERM (connections first, then the lifespan); wait for the end."""
        self.server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"uvicorn did not shut down within {timeout:g} s")
        self._socket.close()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._thread.is_alive():
            self.stop()
