"""Child processes of a bench run: spawn, wait for the first 200, sample RSS and CPU, stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx
import psutil

API_DIR = Path(__file__).resolve().parent.parent
STOP_TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """This environment without any VS_* setting (or fake game server knob) of the caller's,
    plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VS_", "BENCH_", "FAKE_VS_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(API_DIR), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class Child:
    """One subprocess, its output in a log file; `stop()` is safe to call more than once."""

    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str], log: Path) -> None:
        self.name = name
        self.log_path = log
        self._log = log.open("wb")
        self.spawned = time.perf_counter()
        self.proc = subprocess.Popen(
            list(argv),
            cwd=API_DIR,
            env=child_env(env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.ps = psutil.Process(self.proc.pid)

    @classmethod
    def python(cls, name: str, args: Sequence[str], env: Mapping[str, str], log: Path) -> Child:
        return cls(name, [sys.executable, *args], env, log)

    def wait_ok(self, url: str, timeout: float = 60, poll: float = 0.01) -> float:
        """Seconds from spawn to the first 200 from `url`."""
        deadline = time.perf_counter() + timeout
        with httpx.Client(timeout=2) as client:
            while time.perf_counter() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    if client.get(url).status_code == 200:
                        return time.perf_counter() - self.spawned
                except httpx.HTTPError:
                    pass
                time.sleep(poll)
        tail = self.log_path.read_text(errors="replace")[-3000:]
        state = f"exit code {self.proc.returncode}" if self.proc.poll() is not None else "running"
        raise RuntimeError(
            f"{self.name} ({state}) did not answer 200 on {url} within {timeout:g} s; "
            f"its output:\n{tail}"
        )

    def rss_mib(self) -> float:
        return self.ps.memory_info().rss / 2**20

    def cpu_seconds(self) -> float:
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT)
        self._log.close()
