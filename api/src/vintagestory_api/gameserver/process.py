"""Every OS call the supervisor makes (spawn, write, signal, wait, find dotnet) behind Protocols.

The real launcher execs the server without a shell (the pid we hold is the server itself), in
a session of its own (a Ctrl-C to the API's terminal reaches the API, which then stops the
game server properly, not the game server mid-save), with three pipes and stdin kept open for
the whole life of the process: a closed stdin would leave the server running but deaf.
Tests use this same launcher with the fake server as the command.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

# The console reads its pipes in chunks and takes a line longer than this (more than any crash
# report) in pieces; a stream buffers up to twice this before it stops reading the pipe.
STREAM_LIMIT = 1024 * 1024


class GameProcess(Protocol):
    """A spawned game server."""

    @property
    def pid(self) -> int: ...

    @property
    def stdout(self) -> asyncio.StreamReader: ...

    @property
    def stderr(self) -> asyncio.StreamReader: ...

    async def write(self, data: bytes) -> None:
        """One write to stdin, drained; raises ConnectionError when the pipe is gone."""

    def send_signal(self, sig: signal.Signals) -> None:
        """Signal the process; nothing when it has already exited."""

    async def wait(self) -> int:
        """The exit status once it has exited (-N: killed by signal N)."""


class Launcher(Protocol):
    async def spawn(
        self, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str] | None = None
    ) -> GameProcess: ...

    async def dotnet_runtimes(self) -> list[str] | None:
        """`dotnet --list-runtimes` lines, or None when there is no `dotnet` at all."""


class _AsyncioProcess:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self._proc = proc
        # Spawned with three pipes, so none of them is None.
        assert proc.stdout is not None
        assert proc.stderr is not None
        assert proc.stdin is not None
        self._stdout = proc.stdout
        self._stderr = proc.stderr
        self._stdin = proc.stdin

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def stdout(self) -> asyncio.StreamReader:
        return self._stdout

    @property
    def stderr(self) -> asyncio.StreamReader:
        return self._stderr

    async def write(self, data: bytes) -> None:
        self._stdin.write(data)
        await self._stdin.drain()

    def send_signal(self, sig: signal.Signals) -> None:
        # ProcessLookupError: it exited between our check and the signal; that is fine.
        with contextlib.suppress(ProcessLookupError):
            self._proc.send_signal(sig)

    async def wait(self) -> int:
        return await self._proc.wait()


class SubprocessLauncher:
    """The real launcher: asyncio subprocesses, exec without a shell."""

    async def spawn(
        self, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str] | None = None
    ) -> GameProcess:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            limit=STREAM_LIMIT,
        )
        return _AsyncioProcess(proc)

    async def dotnet_runtimes(self) -> list[str] | None:
        dotnet = shutil.which("dotnet")
        if dotnet is None:
            return None
        try:
            proc = await asyncio.create_subprocess_exec(
                dotnet,
                "--list-runtimes",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
                env={**os.environ, "DOTNET_CLI_TELEMETRY_OPTOUT": "1"},
            )
            out, _ = await asyncio.wait_for(proc.communicate(), timeout=20)
        except (OSError, TimeoutError):
            return []
        return out.decode("utf-8", "replace").splitlines()
