"""Checking a mod archive before it goes into `Mods/`: a zip the game can load, not a zip bomb,
whose `modinfo.json` (read as leniently as the game does) names the mod it is said to be.
Blocking file work: call it in a thread.
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from vintagestory_api.kit.version_numbers import version_key

from .errors import ModArchiveInvalid, ModArchiveMismatch, ModArchiveUnsafe
from .modinfo import (
    MAX_ARCHIVE_ENTRIES,
    MAX_ARCHIVE_UNPACKED_BYTES,
    MAX_MODINFO_BYTES,
    MODINFO,
    ModFile,
    ModInfoError,
    parse_modinfo,
    unsafe_member,
)

_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ArchiveLimits:
    """What an archive may unpack to. The ratio is only checked above `ratio_floor` bytes: a
    small archive of text compresses well and harms nobody."""

    max_unpacked_bytes: int = MAX_ARCHIVE_UNPACKED_BYTES
    max_ratio: float = 100.0
    ratio_floor: int = 16 * 1024 * 1024


def check_archive(
    path: Path,
    *,
    label: str,
    limits: ArchiveLimits,
    modid: str | None = None,
    version: str | None = None,
) -> ModFile:
    """The mod in the archive at `path`; raises a `ModError` saying what is wrong with it.

    `label` starts every message ("carryon 1.12.1", "upload CarryOn.zip"); with `modid` and
    `version` given, the archive must be that mod in that version.
    """
    try:
        mod = _read(path, label, limits)
    except (ModArchiveInvalid, ModArchiveUnsafe):
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        raise ModArchiveInvalid(f"{label}: not a readable zip archive ({_short(exc)})") from None
    except ModInfoError as exc:
        raise ModArchiveInvalid(f"{label}: {exc}") from None
    except (OSError, ValueError) as exc:
        raise ModArchiveInvalid(f"{label}: cannot read the archive ({_short(exc)})") from None
    if modid is not None and (mod.modid or "").lower() != modid.lower():
        raise ModArchiveMismatch(
            f"{label}: the archive's {MODINFO} names modid {mod.modid!r}, not {modid!r}"
        )
    if version is not None and not same_version(mod.version, version):
        raise ModArchiveMismatch(
            f"{label}: the archive's {MODINFO} says version {mod.version!r}, not {version!r}"
        )
    return mod


def _read(path: Path, label: str, limits: ArchiveLimits) -> ModFile:
    if not zipfile.is_zipfile(path):
        raise ModArchiveInvalid(f"{label}: not a zip archive")
    archive_bytes = path.stat().st_size
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        if len(infos) > MAX_ARCHIVE_ENTRIES:
            raise ModArchiveUnsafe(
                f"{label}: {len(infos)} entries, more than the {MAX_ARCHIVE_ENTRIES} allowed"
            )
        for info in infos:
            if unsafe_member(info.filename):
                raise ModArchiveUnsafe(f"{label}: unsafe path in archive: {info.filename[:100]!r}")
        unpacked = sum(info.file_size for info in infos)
        if unpacked > limits.max_unpacked_bytes:
            raise ModArchiveUnsafe(
                f"{label}: would unpack to {unpacked} bytes, more than the "
                f"{limits.max_unpacked_bytes} byte limit (zip bomb?)"
            )
        ratio = unpacked / max(archive_bytes, 1)
        if unpacked > limits.ratio_floor and ratio > limits.max_ratio:
            raise ModArchiveUnsafe(
                f"{label}: {archive_bytes} bytes would unpack to {unpacked} ({ratio:.0f} times "
                f"as much, more than the {limits.max_ratio:g} allowed; zip bomb?)"
            )
        modinfo = next((i for i in infos if i.filename.lower() == MODINFO), None)
        if modinfo is None:
            raise ModArchiveInvalid(f"{label}: no {MODINFO} at the top of the archive")
        if modinfo.file_size > MAX_MODINFO_BYTES:
            raise ModArchiveInvalid(f"{label}: {MODINFO} is {modinfo.file_size} bytes, too large")
        # Unpack every entry once, as the game will: a damaged entry (bad CRC, cut short) fails
        # here rather than in the game. zipfile stops each entry at its declared size, so the
        # declared total above bounds the work.
        for info in infos:
            if info.is_dir():
                continue
            with archive.open(info) as handle:
                while handle.read(_CHUNK):
                    pass
        with archive.open(modinfo) as handle:
            raw = handle.read(MAX_MODINFO_BYTES + 1)
    return parse_modinfo(raw, file=path.name)


def same_version(found: str | None, expected: str) -> bool:
    """`1.12.1` is `v1.12.1`: authors and the database do not always spell it alike."""
    if found is None:
        return False
    key = version_key(found)
    return found == expected or (key is not None and key == version_key(expected))


def _short(exc: BaseException) -> str:
    text = str(exc).strip().replace("\n", "; ") or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
