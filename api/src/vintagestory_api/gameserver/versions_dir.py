"""Installed game versions side by side, and which one is current.

```
<server dir>/
  versions/<version>/     one unpacked server per version
  current  -> versions/<version>     the one that runs
  previous -> versions/<version>     the one before it, kept for a rollback
  current_version         the current version as text, for whoever reads the old layout
```

A switch replaces each link with `rename(2)` over it, so a reader (the next launch, a crash
at any moment) sees the old link or the new one, never none. The links are authoritative;
`current_version` follows them and is put back in step at startup if a crash came between.
A hand-made install (the server's files directly in the server dir, `current_version` next to
them) keeps working and simply has no previous version until the first install here.

Every call does file-system work: call from a thread.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import structlog

from vintagestory_api.kit.file_reads import read_file_bytes
from vintagestory_api.kit.state_files import write_atomic
from vintagestory_api.kit.version_numbers import version_key

logger = structlog.get_logger()

VERSIONS = "versions"
CURRENT = "current"
PREVIOUS = "previous"
VERSION_FILE = "current_version"
# Work in progress lives inside versions/ (the same file system, so moving it in is a rename);
# a leading dot keeps it from ever being taken for a version.
STAGING_PREFIX = ".staging-"
DOWNLOAD_PREFIX = ".download-"
TRASH_PREFIX = ".trash-"


@dataclass(frozen=True)
class Links:
    current: str | None
    previous: str | None
    # What `current_version` said: a hand-made install's version when there is no link.
    file_version: str | None = None


class VersionsDir:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.versions = root / VERSIONS

    # --- reading ---------------------------------------------------------------------------

    def current(self) -> str | None:
        return self._link(CURRENT)

    def previous(self) -> str | None:
        return self._link(PREVIOUS)

    def links(self) -> Links:
        return Links(
            current=self.current(), previous=self.previous(), file_version=self.file_version()
        )

    def path(self, version: str) -> Path:
        return self.versions / version

    def file_version(self) -> str | None:
        """What `current_version` says (bounded, never blocking), or None."""
        try:
            raw = read_file_bytes(self.root / VERSION_FILE, 255)
        except OSError:
            return None
        text = raw.decode("utf-8", errors="replace").strip()
        return text if version_key(text) is not None else None

    def _link(self, name: str) -> str | None:
        try:
            target = os.readlink(self.root / name)
        except OSError:
            return None
        # Only links written here count: `versions/<a version>`, to a directory that exists.
        parts = PurePosixPath(target).parts
        if len(parts) != 2 or parts[0] != VERSIONS or version_key(parts[1]) is None:
            return None
        return parts[1] if (self.versions / parts[1]).is_dir() else None

    # --- work areas ------------------------------------------------------------------------

    def new_staging(self, version: str) -> Path:
        self.versions.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{version}-", dir=self.versions))

    def download_path(self, version: str) -> Path:
        self.versions.mkdir(parents=True, exist_ok=True)
        return self.versions / f"{DOWNLOAD_PREFIX}{version}.tar.gz"

    # --- changing --------------------------------------------------------------------------

    def add(self, staging: Path, version: str) -> None:
        """Move an unpacked version into place, replacing an older copy that is not current."""
        if version == self.current():
            raise ValueError(f"{version} is the current version; it cannot be replaced")
        target = self.path(version)
        if target.exists() or target.is_symlink():
            self.remove(target)
        os.rename(staging, target)
        _fsync_dir(self.versions)

    def point(self, links: Links) -> None:
        """Make the links say `links` (a missing one is removed); `switch` returns such."""
        if links.current is None:
            # Back to a hand-made install (or none): no links, and its own version file.
            (self.root / CURRENT).unlink(missing_ok=True)
            (self.root / PREVIOUS).unlink(missing_ok=True)
            if links.file_version is not None:
                self._write_version_file(links.file_version)
            return
        if links.previous is not None and links.previous != links.current:
            self._replace_link(PREVIOUS, links.previous)
        else:
            (self.root / PREVIOUS).unlink(missing_ok=True)
        self._replace_link(CURRENT, links.current)
        self.sync_version_file()

    def switch(self, version: str) -> Links:
        """Make `version` current and the current one previous; returns the links before."""
        before = self.links()
        previous = before.current if before.current != version else before.previous
        self.point(Links(current=version, previous=previous))
        return before

    def sync_version_file(self) -> None:
        """Write `current_version` when it does not say what `current` points to."""
        current = self.current()
        if current is not None and self.file_version() != current:
            self._write_version_file(current)

    def _write_version_file(self, version: str) -> None:
        write_atomic(
            self.root / VERSION_FILE, f"{version}\n".encode(), keep_backup=False, mode=0o644
        )

    def prune(self, *, keep: set[str] | None = None) -> list[str]:
        """Remove every version but current and previous (and `keep`), and leftover work."""
        if not self.versions.is_dir():
            return []
        kept = {v for v in (self.current(), self.previous(), *(keep or ())) if v is not None}
        removed = []
        for entry in sorted(self.versions.iterdir()):
            if entry.name in kept:
                continue
            self.remove(entry)
            removed.append(entry.name)
        if removed:
            logger.info("game_server_versions_pruned", removed=removed, kept=sorted(kept))
        return removed

    def _replace_link(self, name: str, version: str) -> None:
        if not self.path(version).is_dir():
            raise FileNotFoundError(f"{self.path(version)} is not an installed version")
        tmp = self.root / f".{name}.tmp-{os.getpid()}"
        tmp.unlink(missing_ok=True)
        # Relative, so the server dir can be moved or mounted elsewhere as a whole.
        os.symlink(f"{VERSIONS}/{version}", tmp)
        os.replace(tmp, self.root / name)
        _fsync_dir(self.root)

    def remove(self, path: Path) -> None:
        """Remove a file, link or tree here (nothing when it is not there)."""
        if path.is_symlink() or not path.is_dir():
            path.unlink(missing_ok=True)
            return
        # Out of sight first, so a half-removed tree is never taken for a version.
        trash = Path(tempfile.mkdtemp(prefix=TRASH_PREFIX, dir=self.versions))
        os.rename(path, trash / "gone")
        shutil.rmtree(trash, ignore_errors=True)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
