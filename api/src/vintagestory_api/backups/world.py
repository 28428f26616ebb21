"""The world file: where it is, copying it consistently, checking a copy, and waiting for the
game's own backup file to be complete. Blocking calls; the service runs them in threads."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import time
from pathlib import Path

DEFAULT_WORLD = Path("Saves") / "default.vcdbs"
# The server's companions of a world opened in WAL mode.
WAL_SUFFIXES = ("-wal", "-shm", "-journal")


def world_path(data_path: Path) -> Path:
    """The world the server loads: serverconfig.json's SaveFileLocation when it is inside the
    data path (a stale path from another directory is not followed), else Saves/default.vcdbs."""
    default = data_path / DEFAULT_WORLD
    try:
        config = json.loads((data_path / "serverconfig.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return default
    world = config.get("WorldConfig") if isinstance(config, dict) else None
    location = world.get("SaveFileLocation") if isinstance(world, dict) else None
    if not isinstance(location, str) or not location:
        return default
    candidate = Path(os.path.abspath(data_path / location))
    if candidate.is_relative_to(data_path.absolute()) and candidate != data_path.absolute():
        return candidate
    return default


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def online_copy(source: Path, target: Path) -> None:
    """A consistent copy through SQLite's online backup API, never a file copy: committed
    transactions still in `-wal` are in it, and a write meanwhile cannot tear it."""
    src = sqlite3.connect(f"file:{source}?mode=rw", uri=True, timeout=30)
    try:
        dst = sqlite3.connect(str(target))
        try:
            src.backup(dst)
            # The copied header says WAL; a backup is one self-contained file.
            dst.execute("PRAGMA journal_mode=DELETE")
        finally:
            dst.close()
    finally:
        src.close()
    # No fsync: the copy is a temp file read once more; the archive made from it is fsynced.


def integrity_problem(path: Path) -> str | None:
    """None when SQLite's quick_check passes on `path`, else its first complaint."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        return f"cannot be opened as SQLite: {exc}"
    try:
        rows = conn.execute("PRAGMA quick_check").fetchall()
    except sqlite3.Error as exc:
        return f"is not a sound SQLite database: {exc}"
    finally:
        conn.close()
    messages = [str(row[0]) for row in rows]
    return None if messages == ["ok"] else "; ".join(messages[:3])


def is_complete(path: Path, last_size: int | None) -> tuple[bool, int | None]:
    """(complete?, size now): present, the same size as at the last look, and not locked by a
    writer (the game's backup holds the file while it copies)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return False, None
    if size != last_size or size == 0:
        return False, size
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False, size
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False, size
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    return True, size


def wait_complete(path: Path, deadline: float, poll: float = 0.05) -> bool:
    """Poll `is_complete` until the monotonic `deadline`; False when it never was."""
    last: int | None = None
    while time.monotonic() < deadline:
        done, last = is_complete(path, last)
        if done:
            return True
        time.sleep(poll)
    return False
