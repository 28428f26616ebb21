"""One scheduler per data directory: an exclusive `flock` held for the life of the process.

Two processes on the same data (a second start, `--workers 2`) would each run every job. The
kernel drops a `flock` when its holder exits, however it exits (SIGKILL included), so a stale
lock file never blocks a restart and is never deleted.
"""

from __future__ import annotations

import fcntl
import os
import stat
from pathlib import Path

import structlog

from .startup import StartupRefused

logger = structlog.get_logger()


class InstanceLocked(StartupRefused):
    """Another live process holds the lock."""

    event = "instance_already_running"

    def __init__(self, path: Path, holder: str) -> None:
        who = f" (pid {holder})" if holder else ""
        super().__init__(
            f"another instance{who} is already running on this data directory; it holds "
            f"{path}. Stop it first: only one scheduler may run per data directory.",
            lock=str(path),
        )
        self.path = path
        self.holder = holder


class LockUnusable(StartupRefused):
    """The lock file cannot be opened or locked, so single-instance cannot be guaranteed."""

    def __init__(self, path: Path, reason: str) -> None:
        # Running without the lock could run every job twice, so this refuses rather than
        # starting degraded. The file holds nothing but a pid: removing it loses nothing.
        super().__init__(
            f"cannot use the single-instance lock {path}: {reason}; remove it or make it a "
            "regular file this user may read and write (it holds only a pid)",
            lock=str(path),
        )
        self.path = path


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
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Non-blocking: a FIFO in its place must not hang startup before it is refused.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise LockUnusable(self.path, (exc.strerror or str(exc)).lower()) from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise LockUnusable(self.path, "not a regular file")
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            raise InstanceLocked(self.path, holder) from None
        except OSError as exc:
            os.close(fd)
            raise LockUnusable(self.path, (exc.strerror or str(exc)).lower()) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            # The pid is only a hint for the message a second instance prints; a full disk
            # that refuses it does not make the lock any less held.
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as exc:
            logger.warning("instance_lock_pid_not_written", path=str(self.path), error=str(exc))
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
