"""Ordering game and mod version strings the way the game and its mod database do.

Versions look like `X.Y.Z` with an optional `-dev.N`, `-pre.N` or `-rc.N` suffix; a suffixed
version comes before its release (`1.22.0-rc.10 < 1.22.0`), and dev < pre < rc, as in the mod
database's compiled version numbers. Mod authors also write `v1.2`, `1.2.3-beta` or `1.0.0a`;
those are ordered as well as they can be rather than rejected.
"""

from __future__ import annotations

import re
from pathlib import Path

import structlog

from .file_reads import os_error_reason, read_file_bytes

logger = structlog.get_logger()

_VERSION = re.compile(
    r"^v?(?P<numbers>\d+(?:\.\d+)*)"
    r"(?:[-.+_]?(?P<label>[a-z]+)[-.]?(?P<n>\d+)?)?$",
    re.IGNORECASE,
)

# Release ranks above every pre-release kind; unknown labels rank lowest.
_RELEASE = 100
_KIND_RANK: dict[str, int] = {
    "dev": 4,
    "alpha": 4,
    "a": 4,
    "pre": 8,
    "preview": 8,
    "beta": 8,
    "b": 8,
    "rc": 12,
}

VersionKey = tuple[tuple[int, ...], int, int]


def version_key(text: str) -> VersionKey | None:
    """A sortable key for `text`, or None when it is not a version number."""
    match = _VERSION.match(text.strip())
    if match is None:
        return None
    numbers = [int(part) for part in match["numbers"].split(".")]
    # 1.2 and 1.2.0 are the same version.
    while len(numbers) > 1 and numbers[-1] == 0:
        numbers.pop()
    label = (match["label"] or "").lower()
    if not label:
        return (tuple(numbers), _RELEASE, 0)
    return (tuple(numbers), _KIND_RANK.get(label, 0), int(match["n"] or 0))


def is_newer(candidate: str | None, current: str | None) -> bool:
    """True only when both parse and `candidate` is strictly newer than `current`."""
    if candidate is None or current is None:
        return False
    new, old = version_key(candidate), version_key(current)
    return new is not None and old is not None and new > old


def newest(versions: list[str]) -> str | None:
    """The highest parseable version; ties keep the first."""
    best: str | None = None
    best_key: VersionKey | None = None
    for version in versions:
        key = version_key(version)
        if key is not None and (best_key is None or key > best_key):
            best, best_key = version, key
    return best


def read_installed_game_version(data_dir: Path, *, server_dir: Path | None = None) -> str | None:
    """The installed server version from `current_version` in `server_dir` (default
    `<data>/server`), or None.

    Read on requests, so nothing about the file may fail one: unreadable is unknown (logged).
    """
    path = (server_dir or data_dir / "server") / "current_version"
    try:
        raw = read_file_bytes(path, 255)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        logger.warning("installed_version_unreadable", file=str(path), reason=os_error_reason(exc))
        return None
    text = raw.decode("utf-8", errors="replace").strip()
    return text if version_key(text) is not None else None
