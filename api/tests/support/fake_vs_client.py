"""Test-side helpers for the fake Vintage Story server (`fake_vs_server.py`).

- `fake_server_command()` is the argv prefix that launches it in place of
  `dotnet VintagestoryServer.dll`.
- `fake_server_env()` builds an environment with its knobs.
- `FakeServerControl` drives the player and event hooks through the control FIFO.
- `FakeServerProcess` runs it as a real subprocess and waits on its output lines.
- `world_writes()` reads the rows the fake committed to a world file or a backup of it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import signal
import sqlite3
import stat
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

FAKE_SERVER_SCRIPT = Path(__file__).with_name("fake_vs_server.py")

READY_PATTERN = (
    r"\[Server Event\] Dedicated Server now running on Port (\d+) and (?:all ips|ip (\S+))!$"
)
LINE_PATTERN = (
    r"^(\d{1,2})\.(\d{1,2})\.(\d{4}) (\d{2}:\d{2}:\d{2}) "
    r"\[Server (Notification|Event|Chat|Warning|Error|Fatal|Debug|Worldgen)\] (.*)$"
)


def fake_server_command(script_path: Path | str | None = None) -> list[str]:
    """The argv prefix that starts the fake; append `--dataPath <dir> --port <n>`."""
    return [sys.executable, str(script_path or FAKE_SERVER_SCRIPT)]


def fake_server_env(base: Mapping[str, str] | None = None, **knobs: object) -> dict[str, str]:
    """`base` (default: this process's environment) without inherited FAKE_VS_* knobs, plus
    `knobs` as FAKE_VS_<NAME> (`time_scale=0.01` sets FAKE_VS_TIME_SCALE). Lists and dicts (the
    script) are JSON-encoded; None leaves a knob unset."""
    source = os.environ if base is None else base
    env = {key: value for key, value in source.items() if not key.startswith("FAKE_VS_")}
    for name, value in knobs.items():
        if value is None:
            continue
        text = json.dumps(value) if isinstance(value, list | dict) else str(value)
        env[f"FAKE_VS_{name.upper()}"] = text
    return env


class FakeServerControl:
    """Writes one hook line per call to the fake's control FIFO (FAKE_VS_CONTROL).

    The FIFO is created here if it does not exist yet, so it can be handed to the fake before
    it starts. A write waits (up to `timeout`) for the fake to open its end, and never blocks
    forever: the FIFO is opened non-blocking, and one line is far below PIPE_BUF, so lines from
    several writers never interleave.
    """

    def __init__(self, fifo_path: Path | str, timeout: float = 10.0) -> None:
        self.path = Path(fifo_path)
        self.timeout = timeout
        if not self.path.exists():
            os.mkfifo(self.path, 0o600)
        if not stat.S_ISFIFO(self.path.stat().st_mode):
            raise ValueError(f"{self.path} is not a FIFO")

    def send(self, line: str) -> None:
        data = (line.rstrip("\n") + "\n").encode("utf-8")
        if b"\n" in data[:-1]:
            raise ValueError("one hook per line")
        deadline = time.monotonic() + self.timeout
        fd = self._open(deadline)
        try:
            while data:
                try:
                    data = data[os.write(fd, data) :]
                except BlockingIOError:
                    self._wait(deadline, "the FIFO to drain")
        finally:
            os.close(fd)

    def _open(self, deadline: float) -> int:
        while True:
            try:
                return os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                # ENXIO: nobody has the FIFO open for reading yet.
                if exc.errno != errno.ENXIO:
                    raise
            self._wait(deadline, "the fake server to open its control FIFO")

    @staticmethod
    def _wait(deadline: float, what: str) -> None:
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.01)

    def join(self, name: str, ip: str = "127.0.0.1", port: int = 51234) -> None:
        self.send(f"join {name} {ip}:{port}")

    def leave(self, name: str) -> None:
        self.send(f"leave {name}")

    def kick(self, name: str, reason: str = "Kicked by Console Admin") -> None:
        self.send(f"kick {name} {reason}")

    def timeout_player(self, name: str) -> None:
        self.send(f"timeout {name}")

    def chat(self, name: str, text: str) -> None:
        self.send(f"chat {name} {text}")

    def error(self) -> None:
        self.send("error")

    def overload(self) -> None:
        self.send("overload")

    def storm(self) -> None:
        self.send("storm")

    def crash(self) -> None:
        self.send("crash")

    def selfstop(self, kind: str = "errors") -> None:
        self.send(f"selfstop {kind}")

    def flood(self, count: int) -> None:
        self.send(f"flood {count}")


class FakeServerProcess:
    """The fake as a real subprocess; stdout and stderr lines are collected by reader threads.

    `expect()` moves a cursor through stdout: each call searches from just after the previous
    match, so a sequence of expects checks order.
    """

    def __init__(
        self,
        data_path: Path,
        *,
        port: int = 0,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        script: Path | str | None = None,
        cwd: Path | str | None = None,
    ) -> None:
        self.data_path = data_path
        argv = [*fake_server_command(script), "--dataPath", str(data_path), "--port", str(port)]
        self.proc = subprocess.Popen(
            [*argv, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env) if env is not None else fake_server_env(),
            cwd=cwd,
        )
        self.lines: list[str] = []
        self.stderr_lines: list[str] = []
        self._cursor = 0
        self._changed = threading.Condition()
        self._done = 0
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True),
            threading.Thread(
                target=self._read, args=(self.proc.stderr, self.stderr_lines), daemon=True
            ),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: IO[bytes] | None, into: list[str]) -> None:
        assert stream is not None
        for raw in stream:
            with self._changed:
                into.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._done += 1
            self._changed.notify_all()

    @property
    def output_closed(self) -> bool:
        return self._done >= len(self._readers)

    def output(self) -> list[str]:
        with self._changed:
            return list(self.lines)

    def expect(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        """The first stdout line at or after the cursor that matches; the cursor moves past it."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for index in range(self._cursor, len(self.lines)):
                    match = regex.search(self.lines[index])
                    if match:
                        self._cursor = index + 1
                        return match
                remaining = deadline - time.monotonic()
                # Both checks run under the lock the readers append with, so a closed stream
                # means every line was scanned.
                if remaining <= 0 or self.output_closed:
                    break
                self._changed.wait(min(remaining, 0.5))
        raise AssertionError(
            f"no stdout line matching {pattern!r} within {timeout}s "
            f"(exit code {self.proc.poll()}); output:\n" + self.describe()
        )

    def expect_stderr(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.stderr_lines:
                    match = regex.search(line)
                    if match:
                        return match
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.output_closed:
                    break
                self._changed.wait(min(remaining, 0.5))
        raise AssertionError(f"no stderr line matching {pattern!r}; output:\n" + self.describe())

    def expect_ready(self, timeout: float = 10.0) -> int:
        """Wait for the ready line; returns the port it names."""
        return int(self.expect(READY_PATTERN, timeout).group(1))

    @property
    def cursor(self) -> int:
        """The index just after the line the last `expect()` matched."""
        with self._changed:
            return self._cursor

    def mark(self) -> int:
        """The current number of stdout lines, to slice what arrives later."""
        with self._changed:
            return len(self.lines)

    def since(self, mark: int) -> list[str]:
        with self._changed:
            return list(self.lines[mark:])

    def describe(self) -> str:
        with self._changed:
            out = "\n".join(self.lines[-80:])
            err = "\n".join(self.stderr_lines[-20:])
        return f"--- stdout (last 80) ---\n{out}\n--- stderr ---\n{err}"

    def write(self, data: bytes) -> None:
        """One raw write to stdin, flushed."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def command(self, text: str) -> None:
        self.write((text + "\n").encode("utf-8"))

    def unread_stdin(self) -> int:
        """Bytes written to stdin that the fake has not read yet (FIONREAD on the pipe)."""
        assert self.proc.stdin is not None
        raw = fcntl.ioctl(self.proc.stdin.fileno(), termios.FIONREAD, b"\0\0\0\0")
        count: int = struct.unpack("i", raw)[0]
        return count

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 10.0) -> int:
        code = self.proc.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=5)
        return code

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        for reader in self._readers:
            reader.join(timeout=5)
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.close()

    def __enter__(self) -> FakeServerProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()


def world_writes(db_path: Path) -> list[tuple[int, str]]:
    """`(seq, kind)` of every write the fake committed to this world file (or backup copy).

    Opens read-only; on a WAL file this leaves empty -wal/-shm files next to it."""
    connection = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        rows = connection.execute("SELECT seq, kind FROM fake_writes ORDER BY seq").fetchall()
    finally:
        connection.close()
    return [(int(seq), str(kind)) for seq, kind in rows]


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `predicate()` until it is true or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)
