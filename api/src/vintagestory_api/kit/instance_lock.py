"""One scheduler per data directory: an exclusive `flock` held for the life of the process.

Two processes on the same data (a second start, `--workers 2`) would each run every job. The
kernel drops a `flock` when its holder exits, however it exits (SIGKILL included), so a stale
lock file never blocks a restart and is never deleted.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import structlog

logger = structlog.get_logger()


class InstanceLocked(RuntimeError):
    """Another live process holds the lock."""

    def __init__(self, path: Path, holder: str) -> None:
        who = f" (pid {holder})" if holder else ""
        super().__init__(
            f"another instance{who} is already running on this data directory; it holds "
            f"{path}. Stop it first: only one scheduler may run per data directory."
        )
        self.path = path
        self.holder = holder


class InstanceLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock without waiting; raises InstanceLocked if another process has it."""
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            raise InstanceLocked(self.path, holder) from None
        except BaseException:
            os.close(fd)
            raise
        # The pid is only a hint for the message a second instance prints.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        logger.debug("instance_lock_acquired", path=str(self.path))

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
