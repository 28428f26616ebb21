"""Reading a small file that something else may have replaced: never blocking, never unbounded.

State files, the admin key, the game's `current_version` and `server.pid` are read by path. What
is at that path may be a directory, a FIFO (whose plain `open` waits for a writer forever) or a
device (which never ends); each is refused at once as `NotARegularFile`, an `OSError` like the
others a read can raise, so callers handle one family.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path


class NotARegularFile(OSError):
    """Something other than a regular file (a directory, a FIFO, a device) is at the path."""

    def __init__(self, path: Path, what: str) -> None:
        code = errno.EISDIR if what == "a directory" else errno.EINVAL
        super().__init__(code, f"is {what}, not a regular file", str(path))
        self.what = what


def kind_of(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "an unknown kind of file"


def read_file_bytes(path: Path, max_bytes: int) -> bytes:
    """Up to `max_bytes + 1` bytes of the regular file at `path`, so a caller can tell "too
    large"; `NotARegularFile` for anything else.

    Opened non-blocking: a plain open of a FIFO waits for a writer, which would hang startup
    (or a sampler thread) forever; a device such as /dev/zero would never end.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotARegularFile(path, kind_of(mode))
        chunks: list[bytes] = []
        remaining = max_bytes + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 64 * 1024))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def os_error_reason(exc: OSError) -> str:
    """What is wrong with a file that could not be read, in words (no path: callers name it)."""
    if isinstance(exc, NotARegularFile):
        return exc.strerror or "not a regular file"
    return f"cannot be read: {(exc.strerror or str(exc)).lower()}"
