"""Finding installed mods and reading their `modinfo.json`, as leniently as the game and as safely
as an untrusted archive demands. Everything here is blocking file work: call it in a thread.
"""

from __future__ import annotations

import re
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import structlog

logger = structlog.get_logger()

MODINFO = "modinfo.json"
MAX_MODINFO_BYTES = 256 * 1024
# A mod archive is loaded by the game in full; one that unpacks to more than this is a zip bomb
# or not a mod, and in either case not something to open further.
MAX_ARCHIVE_UNPACKED_BYTES = 1024 * 1024 * 1024
MAX_ARCHIVE_ENTRIES = 20_000
MAX_SOURCE_BYTES = 1024 * 1024
MAX_DEPENDENCIES = 100

_SIDES = {"server": "server", "client": "client", "universal": "universal", "both": "universal"}
# Code-only mods declare themselves with an assembly attribute instead of a modinfo.json.
_CS_MODINFO = re.compile(
    r"\[\s*assembly\s*:\s*ModInfo\s*\(\s*\"(?P<name>[^\"]*)\"\s*,\s*\"(?P<modid>[^\"]*)\""
    r"(?P<rest>[^\]]*)\]"
)
_CS_FIELD = re.compile(r"\b(?P<key>Version|Side)\s*=\s*\"(?P<value>[^\"]*)\"")


class ModInfoError(Exception):
    """A mod file that cannot be read; the message is shown to the admin as the mod's error."""


@dataclass(frozen=True)
class ModFile:
    """One entry of the Mods directory as found on disk."""

    file: str
    modid: str | None = None
    name: str | None = None
    version: str | None = None
    side: str | None = None
    error: str | None = None
    # modid -> lowest version it needs ("" or "*": any), as `modinfo.json` declares them.
    dependencies: tuple[tuple[str, str], ...] = ()


def parse_modinfo(raw: bytes, *, file: str) -> ModFile:
    """Read `modinfo.json` bytes as the game does: JSON5, keys in any case."""
    if len(raw) > MAX_MODINFO_BYTES:
        raise ModInfoError(f"{MODINFO} is larger than {MAX_MODINFO_BYTES} bytes")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ModInfoError(f"{MODINFO} is not UTF-8 (byte {exc.start})") from None
    import json5  # here: import cost at startup (only mod scans parse modinfo)

    try:
        document = json5.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ModInfoError(f"{MODINFO} is not valid JSON: {_short(exc)}") from None
    if not isinstance(document, dict):
        raise ModInfoError(f"{MODINFO} is not a JSON object")
    fields = {str(key).lower(): value for key, value in document.items()}
    name = _text(fields.get("name"))
    modid = _text(fields.get("modid"))
    if modid is None and name is not None:
        # The game derives an id from the name when a mod declares none.
        modid = "".join(ch for ch in name.lower() if ch.isascii() and ch.isalnum()) or None
    if modid is None:
        raise ModInfoError(f"{MODINFO} has neither a modid nor a name")
    side = _text(fields.get("side"))
    return ModFile(
        file=file,
        modid=modid,
        name=name,
        version=_text(fields.get("version")),
        side=_SIDES.get(side.lower(), side) if side else "universal",
        dependencies=_dependencies(fields.get("dependencies")),
    )


def _dependencies(value: Any) -> tuple[tuple[str, str], ...]:
    # The game ignores what it cannot read here rather than refusing the mod; so do we.
    if not isinstance(value, dict):
        return ()
    found: list[tuple[str, str]] = []
    for key, version in value.items():
        modid = str(key).strip().lower()
        if modid and len(found) < MAX_DEPENDENCIES:
            text = _text(version)
            found.append((modid, "" if text is None or text == "*" else text))
    return tuple(found)


def read_zip_mod(path: Path) -> ModFile:
    """The mod in a `.zip`; raises `ModInfoError` for a broken, unsafe or modinfo-less archive."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            if len(infos) > MAX_ARCHIVE_ENTRIES:
                raise ModInfoError(f"archive has {len(infos)} entries, more than allowed")
            for info in infos:
                if unsafe_member(info.filename):
                    raise ModInfoError(f"unsafe path in archive: {info.filename[:100]!r}")
            unpacked = sum(info.file_size for info in infos)
            if unpacked > MAX_ARCHIVE_UNPACKED_BYTES:
                raise ModInfoError(
                    f"archive would unpack to {unpacked} bytes, more than the "
                    f"{MAX_ARCHIVE_UNPACKED_BYTES} byte limit (zip bomb?)"
                )
            modinfo = next((i for i in infos if i.filename.lower() == MODINFO), None)
            if modinfo is None:
                raise ModInfoError(f"no {MODINFO} at the top of the archive")
            if modinfo.file_size > MAX_MODINFO_BYTES:
                raise ModInfoError(
                    f"{MODINFO} in the archive is {modinfo.file_size} bytes, too large"
                )
            with archive.open(modinfo) as handle:
                # Never trust the declared size: read at most one byte past the limit.
                raw = handle.read(MAX_MODINFO_BYTES + 1)
    except ModInfoError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        raise ModInfoError(f"not a readable zip archive: {_short(exc)}") from None
    except (OSError, ValueError) as exc:
        raise ModInfoError(f"cannot read archive: {_short(exc)}") from None
    return parse_modinfo(raw, file=path.name)


def read_folder_mod(path: Path) -> ModFile | None:
    """The mod in a folder, or None when the folder has no `modinfo.json`."""
    info = next((p for p in path.iterdir() if p.name.lower() == MODINFO and p.is_file()), None)
    if info is None:
        return None
    with info.open("rb") as handle:
        raw = handle.read(MAX_MODINFO_BYTES + 1)
    return parse_modinfo(raw, file=path.name)


def read_source_mod(path: Path) -> ModFile:
    """A `.cs` mod: its id comes from an `[assembly: ModInfo(...)]` attribute when it has one."""
    with path.open("rb") as handle:
        text = handle.read(MAX_SOURCE_BYTES).decode("utf-8", errors="replace")
    match = _CS_MODINFO.search(text)
    if match is None:
        return ModFile(file=path.name, name=path.stem)
    extra = {m["key"].lower(): m["value"] for m in _CS_FIELD.finditer(match["rest"])}
    side = extra.get("side")
    return ModFile(
        file=path.name,
        modid=match["modid"] or None,
        name=match["name"] or path.stem,
        version=extra.get("version"),
        side=_SIDES.get(side.lower(), side) if side else "universal",
    )


class ModScanner:
    """Lists the Mods directory; re-reads only files whose size or mtime changed."""

    def __init__(self, mods_dir: Path) -> None:
        self.mods_dir = mods_dir
        self._seen: dict[str, tuple[int, int, ModFile | None]] = {}

    def scan(self) -> list[ModFile]:
        try:
            entries = sorted(self.mods_dir.iterdir(), key=lambda p: p.name.casefold())
        except (FileNotFoundError, NotADirectoryError):
            self._seen.clear()
            return []
        found: list[ModFile] = []
        seen: dict[str, tuple[int, int, ModFile | None]] = {}
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                st = entry.stat()
            except OSError:
                continue
            mtime = st.st_mtime_ns
            if stat.S_ISDIR(st.st_mode):
                modinfo = entry / MODINFO
                mtime = modinfo.stat().st_mtime_ns if modinfo.exists() else mtime
            key = (mtime, st.st_size)
            previous = self._seen.get(entry.name)
            mod = previous[2] if previous and previous[:2] == key else _read_entry(entry, st)
            seen[entry.name] = (*key, mod)
            if mod is not None:
                found.append(mod)
        self._seen = seen
        return found


def _read_entry(path: Path, st: Any) -> ModFile | None:
    suffix = path.suffix.lower()
    try:
        if stat.S_ISDIR(st.st_mode):
            return read_folder_mod(path)
        if not stat.S_ISREG(st.st_mode):
            return None
        if suffix == ".zip":
            return read_zip_mod(path)
        if suffix == ".cs":
            return read_source_mod(path)
        if suffix == ".dll":
            # Reading .NET assembly metadata is out of scope: listed, never looked up.
            return ModFile(file=path.name, name=path.stem)
    except ModInfoError as exc:
        logger.warning("mod_file_unreadable", file=path.name, reason=str(exc))
        return ModFile(file=path.name, error=str(exc))
    except OSError as exc:
        logger.warning("mod_file_unreadable", file=path.name, reason=str(exc))
        return ModFile(file=path.name, error=f"cannot read: {exc.strerror or exc}")
    return None


def unsafe_member(name: str) -> bool:
    normalized = name.replace("\\", "/")
    if "\x00" in normalized or normalized.startswith("/"):
        return True
    if re.match(r"^[A-Za-z]:", normalized):
        return True
    return ".." in PurePosixPath(normalized).parts


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    text = str(value).strip()
    return text or None


def _short(exc: BaseException) -> str:
    text = str(exc).strip().replace("\n", "; ")
    return text if len(text) <= 200 else text[:197] + "..."
