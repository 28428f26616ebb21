"""Durable state files: atomic writes, a kept backup, and corrupt files set aside, never lost.

Every file the service writes under `<data>/state/` goes through here, so that a crash at any
moment leaves either the old or the new complete version on disk, and a bad file is kept for the
admin to inspect instead of being silently overwritten. A file that cannot be read at all (a
directory in its place, a FIFO, no permission) is a bad file like any other: set aside, and the
service runs on the backup or the defaults instead of failing to start.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

import structlog

from .file_reads import kind_of, os_error_reason, read_file_bytes
from .schemas import ComponentHealth

logger = structlog.get_logger()

T = TypeVar("T")

MAX_STATE_FILE_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 64
# Integers with more digits than this are not settings or cache values; Python would parse them
# (slowly) and pydantic would reject them later with a less useful message.
MAX_INT_DIGITS = 30
TEMP_MARKER = ".tmp-"


class CorruptStateFile(Exception):
    """A state file that exists but cannot be used; `reason` says why."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path.name}: {reason}")
        self.path = path
        self.reason = reason


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, *, keep_backup: bool = True, mode: int = 0o600) -> None:
    """Replace `path` with `data` so that readers see the old or the new file, never a mix.

    Temp file in the same directory, fsync, `os.replace`, fsync of the directory. The previous
    version, when it exists, is kept as `<name>.bak` (hard link, so it is never half-written).
    """
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    # Unique per process and thread, and marked so `remove_stale_temp_files` finds leftovers.
    suffix = f"{TEMP_MARKER}{os.getpid()}-{threading.get_ident()}"
    tmp = directory / f"{path.name}{suffix}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        if keep_backup and path.is_file():
            backup = path.with_name(path.name + ".bak")
            _set_aside_if_not_a_file(backup)
            backup_tmp = path.with_name(backup.name + suffix)
            backup_tmp.unlink(missing_ok=True)
            try:
                os.link(path, backup_tmp)
            except OSError:
                # Some filesystems (FAT, some network mounts) have no hard links; copy instead.
                _copy_durably(path, backup_tmp, mode)
            os.replace(backup_tmp, backup)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(directory)


def _set_aside_if_not_a_file(path: Path) -> None:
    # Nothing can be renamed over a directory, so a directory where the backup goes would make
    # every later write fail; it is kept aside like any bad file instead.
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode) and not stat.S_ISLNK(mode):
        moved = quarantine(path)
        logger.error(
            "state_file_backup_set_aside",
            file=str(path),
            reason=f"is {kind_of(mode)}, not a regular file",
            kept_as=str(moved),
        )


def _copy_durably(source: Path, target: Path, mode: int) -> None:
    data = source.read_bytes()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def dump_json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, allow_nan=False) + "\n").encode()


def write_json(path: Path, value: Any, *, keep_backup: bool = True) -> None:
    write_atomic(path, dump_json(value), keep_backup=keep_backup)


def remove_stale_temp_files(directory: Path) -> list[Path]:
    """Delete temp files a crashed writer left behind; returns what was removed."""
    removed: list[Path] = []
    if not directory.is_dir():
        return removed
    for entry in directory.iterdir():
        if TEMP_MARKER in entry.name and entry.is_file():
            entry.unlink(missing_ok=True)
            removed.append(entry)
    if removed:
        logger.info("stale_temp_files_removed", files=[p.name for p in removed])
    return removed


def quarantine(path: Path) -> Path:
    """Move a bad file aside as `<name>.corrupt-<UTC timestamp>`; never overwrites one."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    counter = 1
    while target.exists():
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{counter}")
        counter += 1
    os.rename(path, target)
    _fsync_dir(path.parent)
    return target


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"number with {len(text)} digits is too large")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def _depth(value: Any, limit: int) -> int:
    # Iterative so that a hostile file cannot exhaust the Python stack here either.
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > limit:
            return deepest
        if isinstance(item, dict):
            stack.extend((child, level + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, level + 1) for child in item)
    return deepest


def parse_json_bytes(path: Path, raw: bytes, *, max_bytes: int = MAX_STATE_FILE_BYTES) -> Any:
    """Strictly parse a state file's bytes, raising `CorruptStateFile` with a clear reason."""
    if len(raw) > max_bytes:
        raise CorruptStateFile(path, f"file is {len(raw)} bytes, larger than {max_bytes}")
    if not raw.strip():
        raise CorruptStateFile(path, "file is empty")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptStateFile(path, f"not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    # Cheap pre-check before the recursive parser sees it: bracket depth bounds nesting depth.
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and _bracket_depth(text) > MAX_JSON_DEPTH:
        raise CorruptStateFile(path, f"nesting deeper than {MAX_JSON_DEPTH} levels")
    try:
        value = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_int=_parse_int,
            parse_float=_parse_float,
        )
    except (ValueError, RecursionError) as exc:
        raise CorruptStateFile(path, f"not valid JSON: {exc}") from exc
    if _depth(value, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise CorruptStateFile(path, f"nesting deeper than {MAX_JSON_DEPTH} levels")
    return value


def _bracket_depth(text: str) -> int:
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def read_json(path: Path, *, max_bytes: int = MAX_STATE_FILE_BYTES) -> Any:
    """Read and strictly parse a JSON state file; `FileNotFoundError` when it is absent, another
    `OSError` (`NotARegularFile` included) when it cannot be read."""
    return parse_json_bytes(path, read_file_bytes(path, max_bytes), max_bytes=max_bytes)


@dataclass(frozen=True)
class Loaded(Generic[T]):
    """What `load_state` found: the value, where it came from, and any problem on the way."""

    value: T | None
    source: str  # "file", "backup" or "none"
    corrupt_reason: str | None = None
    quarantined_to: Path | None = None
    # Why the bad file is still in place, when renaming it aside failed.
    set_aside_error: str | None = None

    @property
    def problem(self) -> str | None:
        """The file's problem in one sentence for `/healthz`, or None when it loaded cleanly."""
        if self.corrupt_reason is None:
            return None
        if self.quarantined_to is not None:
            kept = f"; kept as {self.quarantined_to.name}"
        elif self.set_aside_error is not None:
            kept = f"; it could not be set aside ({self.set_aside_error})"
        else:
            kept = ""
        return f"{self.corrupt_reason}{kept}"

    def health(self, path: Path, *, without_backup: str, until: str) -> ComponentHealth:
        """`degraded` with what went wrong and what the service runs on instead, else `ok`."""
        if self.problem is None:
            return ComponentHealth(status="ok")
        using = "its backup" if self.source == "backup" else without_backup
        return ComponentHealth(
            status="degraded", reason=f"{path.name}: {self.problem}; running on {using} {until}"
        )


def write_failed_health(path: Path, exc: OSError) -> ComponentHealth:
    """A state file whose last write failed: what runs may no longer be what is on disk."""
    return ComponentHealth(
        status="degraded",
        reason=f"{path.name}: the last write failed ({exc.strerror or exc}); changes cannot be "
        "saved until a write succeeds",
    )


def set_aside(path: Path) -> tuple[Path | None, str | None]:
    """Quarantine `path`; (where it went, None) or, when even that fails, (None, why)."""
    try:
        return quarantine(path), None
    except OSError as exc:
        # A read-only directory, a mount point: the service still runs, on what it has.
        return None, (exc.strerror or str(exc)).lower()


def load_state(path: Path, validate: Callable[[Any], T], *, event: str) -> Loaded[T]:
    """Load `path` through `validate`; on any problem keep the bad file aside and try `.bak`.

    `validate` raises (ValueError or pydantic's ValidationError) when the parsed JSON is not a
    valid document. A file that is bad or cannot be read at all (`OSError`: a directory, a FIFO,
    no permission) is renamed to `<name>.corrupt-<ts>` and `event` is logged at error level with
    the reason; if the rename fails too, the file stays and the service runs on without it.
    `value` is None when neither the file nor its backup is usable. Never raises for a file.
    """
    backup = path.with_name(path.name + ".bak")
    moved: Path | None = None
    aside_error: str | None = None
    try:
        return Loaded(value=validate(read_json(path)), source="file")
    except FileNotFoundError:
        if not backup.exists():
            return Loaded(value=None, source="none")
        reason = "file is missing but a backup exists"
    except (CorruptStateFile, ValueError, OSError) as exc:
        reason = _reason(exc)
        moved, aside_error = set_aside(path)
        logger.error(
            event,
            file=str(path),
            reason=reason,
            kept_as=str(moved) if moved else None,
            set_aside_failed=aside_error,
        )

    def found(value: T | None, source: str) -> Loaded[T]:
        return Loaded(value, source, reason, moved, aside_error)

    try:
        value = validate(read_json(backup))
    except FileNotFoundError:
        return found(None, "none")
    except (CorruptStateFile, ValueError, OSError) as exc:
        # Set aside as well: a directory there would block every later write's backup, and a
        # bad one would be reported again at each start.
        backup_moved, backup_error = set_aside(backup)
        logger.error(
            event,
            file=str(backup),
            reason=_reason(exc),
            kept_as=str(backup_moved) if backup_moved else None,
            set_aside_failed=backup_error,
        )
        return found(None, "none")
    logger.warning("state_file_restored_from_backup", file=str(path), backup=str(backup))
    return found(value, "backup")


def _reason(exc: Exception) -> str:
    if isinstance(exc, CorruptStateFile):
        return exc.reason
    if isinstance(exc, OSError):
        return os_error_reason(exc)
    return _short(exc)


_unfinished: set[asyncio.Task[Any]] = set()


def _retrieve(task: asyncio.Task[Any]) -> None:
    _unfinished.discard(task)
    # A caller that was cancelled never awaits the result; read it so asyncio does not warn.
    if not task.cancelled():
        task.exception()


async def complete_even_if_cancelled(work: Coroutine[Any, Any, T]) -> T:
    """Await `work` in its own task that a cancelled caller does not cancel.

    A read-modify-write that is cut off between writing the file and updating memory would leave
    the two disagreeing; a cancelled request therefore only stops waiting, the change completes.
    """
    task = asyncio.ensure_future(work)
    _unfinished.add(task)
    task.add_done_callback(_retrieve)
    return await asyncio.shield(task)


def _short(exc: Exception) -> str:
    text = str(exc).strip().replace("\n", "; ")
    return text if len(text) <= 500 else text[:497] + "..."
