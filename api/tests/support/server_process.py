"""Run the real service (`python -m vintagestory_api`) as a subprocess for process-level tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerProcess:
    """A service subprocess whose stdout lines are collected by a reader thread."""

    def __init__(
        self,
        data_dir: Path,
        env: Mapping[str, str] | None = None,
        args: tuple[str, ...] = (),
        module: str = "vintagestory_api",
        preexec_fn: Callable[[], None] | None = None,
    ) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        full_env = {key: value for key, value in os.environ.items() if not key.startswith("VS_")}
        full_env.update(
            {
                "VS_DATA_DIR": str(data_dir),
                "VS_PORT": str(self.port),
                "VS_LOG_FORMAT": "json",
                "PYTHONUNBUFFERED": "1",
            }
        )
        full_env.update(env or {})
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=preexec_fn,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    def output(self) -> list[str]:
        with self._lock:
            return list(self.lines)

    def json_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.output() if line.strip()]

    def wait_until(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            if self.proc.poll() is not None and not predicate():
                break
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; output:\n" + "\n".join(self.output()))

    def wait_for_log(self, event: str, timeout: float = 20, **fields: Any) -> dict[str, Any]:
        found: list[dict[str, Any]] = []

        def seen() -> bool:
            for line in self.output():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if entry.get("event") == event and all(
                    entry.get(k) == v for k, v in fields.items()
                ):
                    found.append(entry)
                    return True
            return False

        self.wait_until(seen, timeout, f"log event {event} {fields}")
        return found[0]

    def wait_healthy(self, timeout: float = 30) -> None:
        def healthy() -> bool:
            try:
                return httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        self.wait_until(healthy, timeout, "GET /healthz to answer 200")

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = 30) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._reader.join(timeout=5)
