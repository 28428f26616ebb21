"""The mod folders on disk and every change to them. Blocking file work: call it in a thread.

- `Mods/` (in the game's data path) is what the game loads. Per modid at most one entry is in
  `Mods/` or `mods-disabled/`: whatever puts a version in moves every other one out first.
- `mods-disabled/` (in the API's data dir) is a folder the game does not read.
- `mods-previous/<modid>/` keeps what was replaced or removed, newest last, a few deep, moved
  (never re-packed), so a rollback restores the exact bytes.
- `mods-staging/` holds downloads and uploads until they are checked.

A file enters `Mods/` under a hidden temporary name (which the game does not load: it reads
`*.zip`, `*.dll`, `*.cs` and folders) and is then renamed into place, so the game never sees
half a file; the old version is moved out just before that rename.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path

import structlog

from vintagestory_api.config import Settings

from .modinfo import ModFile, ModScanner, read_folder_mod, read_zip_mod

logger = structlog.get_logger()

DISABLED_DIR = "mods-disabled"
PREVIOUS_DIR = "mods-previous"
STAGING_DIR = "mods-staging"
INCOMING = ".incoming-"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._+() -]")
_SAFE_MODID = re.compile(r"^[a-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class ModPaths:
    mods: Path
    disabled: Path
    previous: Path
    staging: Path

    @classmethod
    def from_settings(cls, settings: Settings) -> ModPaths:
        data = settings.data_dir.absolute()
        return cls(
            mods=settings.game_data_dir / "Mods",
            disabled=data / DISABLED_DIR,
            previous=data / PREVIOUS_DIR,
            staging=data / STAGING_DIR,
        )


@dataclass(frozen=True)
class Entry:
    """One installed mod: its file or folder, what it says it is, and whether the game loads it."""

    path: Path
    mod: ModFile
    enabled: bool


@dataclass(frozen=True)
class Kept:
    """A version kept in `mods-previous/`."""

    path: Path
    name: str
    mod: ModFile | None
    kept_at: datetime


class ModStore:
    def __init__(self, paths: ModPaths, *, keep_previous: int = 3) -> None:
        self.paths = paths
        self.keep_previous = keep_previous
        self._enabled = ModScanner(paths.mods)
        self._disabled = ModScanner(paths.disabled)

    # --- reading ---------------------------------------------------------------------------

    def entries(self) -> list[Entry]:
        found = [Entry(self.paths.mods / mod.file, mod, True) for mod in self._enabled.scan()] + [
            Entry(self.paths.disabled / mod.file, mod, False) for mod in self._disabled.scan()
        ]
        return [entry for entry in found if entry.mod.modid is not None]

    def find(self, modid: str) -> list[Entry]:
        """Every entry of `modid` (normally one; more only when someone copied files in)."""
        wanted = modid.lower()
        return [e for e in self.entries() if (e.mod.modid or "").lower() == wanted]

    def kept(self, modid: str) -> list[Kept]:
        """The versions kept for `modid`, newest first."""
        folder = self._history(modid)
        try:
            names = sorted((p.name for p in folder.iterdir()), reverse=True)
        except (FileNotFoundError, NotADirectoryError):
            return []
        kept: list[Kept] = []
        for name in names:
            stamp, _, original = name.partition("-")
            if not stamp.isdigit() or not original:
                continue
            path = folder / name
            kept.append(
                Kept(
                    path=path,
                    name=original,
                    mod=_read(path),
                    kept_at=datetime.fromtimestamp(int(stamp) / 1e9, UTC),
                )
            )
        return kept

    # --- staging ---------------------------------------------------------------------------

    def new_staging_file(self) -> Path:
        self.paths.staging.mkdir(parents=True, exist_ok=True)
        return self.paths.staging / f"{uuid.uuid4().hex}.zip"

    def clean_staging(self) -> None:
        """What a crashed process left: staged files and half-moved files in `Mods/`."""
        if self.paths.staging.is_dir():
            shutil.rmtree(self.paths.staging, ignore_errors=True)
        for folder in (self.paths.mods, self.paths.disabled):
            try:
                leftovers = [p for p in folder.iterdir() if INCOMING in p.name]
            except (FileNotFoundError, NotADirectoryError):
                continue
            for path in leftovers:
                logger.warning("mod_incoming_file_removed", file=str(path))
                _remove(path)

    # --- changing --------------------------------------------------------------------------

    def install(
        self, staged: Path, *, filename: str, modid: str, version: str | None, enabled: bool
    ) -> tuple[Entry, list[Entry]]:
        """Put `staged` in place of every installed version of `modid`; (new, replaced)."""
        existing = self.find(modid)
        folder = self.paths.mods if enabled else self.paths.disabled
        folder.mkdir(parents=True, exist_ok=True)
        name = self._free_name(folder, _zip_name(filename, modid, version), existing)
        incoming = folder / f".{name}{INCOMING}{uuid.uuid4().hex[:8]}"
        _move(staged, incoming)
        moved: list[tuple[Entry, Path]] = []
        try:
            for entry in existing:
                moved.append((entry, self._keep(entry.path, modid)))
            os.replace(incoming, folder / name)
        except OSError:
            for entry, kept in reversed(moved):
                _move(kept, entry.path)
            _remove(incoming)
            raise
        _fsync_dir(folder)
        self._prune(modid)
        mod = _read(folder / name) or ModFile(file=name, modid=modid, version=version)
        return Entry(folder / name, mod, enabled), existing

    def move(self, entry: Entry, *, enabled: bool) -> Entry:
        """Enable or disable `entry`; any other version where it goes is moved out first."""
        folder = self.paths.mods if enabled else self.paths.disabled
        folder.mkdir(parents=True, exist_ok=True)
        modid = entry.mod.modid or entry.path.name
        others = [e for e in self.find(modid) if e.path != entry.path]
        for other in others:
            self._keep(other.path, modid)
        name = self._free_name(folder, entry.path.name, [entry])
        _move(entry.path, folder / name)
        _fsync_dir(folder)
        self._prune(modid)
        return Entry(folder / name, entry.mod, enabled)

    def remove(self, entries: list[Entry]) -> None:
        """Move `entries` out, into the kept versions (a rollback brings the last one back)."""
        for entry in entries:
            self._keep(entry.path, entry.mod.modid or entry.path.name)
        for entry in entries:
            self._prune(entry.mod.modid or entry.path.name)

    def roll_back(self, modid: str) -> tuple[Entry, list[Entry]] | None:
        """Put the newest kept version back; what it replaced is dropped, so a second rollback
        goes one version further back. None when nothing is kept."""
        kept = self.kept(modid)
        if not kept:
            return None
        last = kept[0]
        current = self.find(modid)
        self.paths.mods.mkdir(parents=True, exist_ok=True)
        name = self._free_name(self.paths.mods, last.name, current)
        incoming = self.paths.mods / f".{name}{INCOMING}{uuid.uuid4().hex[:8]}"
        _move(last.path, incoming)
        for entry in current:
            _remove(entry.path)
        os.replace(incoming, self.paths.mods / name)
        _fsync_dir(self.paths.mods)
        restored = self.paths.mods / name
        mod = _read(restored) or ModFile(file=name, modid=modid)
        return Entry(restored, mod, True), current

    # --- helpers ---------------------------------------------------------------------------

    def _history(self, modid: str) -> Path:
        wanted = modid.lower()
        # A modid comes from a mod's own modinfo.json: any text. Only a plain one names a folder.
        folder = (
            wanted
            if _SAFE_MODID.fullmatch(wanted)
            else "id-" + sha256(wanted.encode()).hexdigest()[:16]
        )
        return self.paths.previous / folder

    def _keep(self, path: Path, modid: str) -> Path:
        folder = self._history(modid)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{time.time_ns():020d}-{path.name}"
        _move(path, target)
        return target

    def _prune(self, modid: str) -> None:
        for old in self.kept(modid)[self.keep_previous :]:
            _remove(old.path)

    @staticmethod
    def _free_name(folder: Path, name: str, replacing: list[Entry]) -> str:
        """A file name in `folder` that no other mod uses; `name` when it is free."""
        taken = {p.name for p in folder.iterdir()} - {e.path.name for e in replacing}
        base, dot, ext = name.rpartition(".")
        candidate, n = name, 1
        while candidate in taken:
            n += 1
            candidate = f"{base}-{n}{dot}{ext}" if dot else f"{name}-{n}"
        return candidate


def _zip_name(filename: str, modid: str, version: str | None) -> str:
    """A plain file name ending in `.zip` (the game loads archives by that extension only)."""
    name = _SAFE_NAME.sub("_", filename.replace("\\", "/").rsplit("/", 1)[-1]).lstrip(". ")[:150]
    if not name:
        name = _SAFE_NAME.sub("_", f"{modid}_{version or 'mod'}")[:150]
    return name if name.lower().endswith(".zip") else f"{name}.zip"


def _read(path: Path) -> ModFile | None:
    try:
        if path.is_dir():
            return read_folder_mod(path)
        if path.suffix.lower() == ".zip":
            return read_zip_mod(path)
    except Exception as exc:  # an unreadable kept file still shows up, without its version
        logger.warning("kept_mod_unreadable", file=str(path), reason=str(exc))
    return None


def _move(source: Path, target: Path) -> None:
    """Rename `source` to `target`; across filesystems, copy next to `target` and rename it in."""
    try:
        os.rename(source, target)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    partial = target.with_name(f".{target.name}{INCOMING}{uuid.uuid4().hex[:8]}")
    try:
        if source.is_dir():
            shutil.copytree(source, partial)
        else:
            shutil.copyfile(source, partial)
            with partial.open("rb+") as handle:
                os.fsync(handle.fileno())
        os.replace(partial, target)
    except OSError:
        _remove(partial)
        raise
    _remove(source)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
