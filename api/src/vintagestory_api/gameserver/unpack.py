"""Unpacking a server tarball safely, and the official tarball's header quirk.

Every entry is checked before anything is written: no absolute path, no `..`, no link (symbolic
or hard) leading out of the target, only files, directories and links (no devices, FIFOs), at
most `MAX_ENTRIES` entries and `max_bytes` in all. Extraction then runs with the standard
library's `data` filter as well, which catches what a name check cannot (a path through an
earlier symlink). One bad entry refuses the whole archive.

The quirk: the official tarballs are written in GNU format, whose header keeps the access and
change times (octal numbers) where POSIX ustar keeps a path prefix. `tarfile` reads that area
as a prefix whatever the format, so `VintagestoryServer.dll` comes out as
`15070731126/VintagestoryServer.dll`. `_ServerTarInfo` drops such a "prefix": always in a GNU
header (GNU never uses one), and in any header when it is nothing but a number of the width
of a time field, which no real server path is.

Blocking: call from a thread.
"""

from __future__ import annotations

import os
import posixpath
import re
import tarfile
import zlib
from pathlib import Path, PurePosixPath

from .errors import ArchiveInvalid, ArchiveUnsafe, UnpackedTooLarge
from .launch import SERVER_DLL

MAX_ENTRIES = 200_000
GNU_MAGIC = b"ustar  \x00"
# A 12-byte octal time field holds 11 digits; upstream saw `15070731126` (a 2025 time).
_TIME_FIELD = re.compile(r"[0-7 ]{11,}")


class _ServerTarInfo(tarfile.TarInfo):
    @classmethod
    def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> _ServerTarInfo:
        info = super().frombuf(buf, encoding, errors)
        assert isinstance(info, _ServerTarInfo)
        # What `frombuf` took for a ustar prefix: bytes 345-500, up to the first NUL.
        prefix = buf[345:500].split(b"\x00", 1)[0].decode("ascii", "replace")
        if prefix and info.name.startswith(prefix + "/"):
            is_gnu = buf[257:265] == GNU_MAGIC
            if is_gnu or _TIME_FIELD.fullmatch(prefix):
                info.name = info.name[len(prefix) + 1 :]
        return info


def unpack(archive: Path, target: Path, *, max_bytes: int) -> int:
    """Check every entry of the gzip tarball `archive`, then extract it into the empty
    directory `target`; the number of bytes unpacked.

    Raises ArchiveUnsafe, UnpackedTooLarge or ArchiveInvalid (not a readable tarball, or not
    a Vintage Story server); `target` may then hold a partial tree for the caller to remove.
    """
    try:
        with tarfile.open(archive, "r:gz", tarinfo=_ServerTarInfo) as tar:
            members, total = _checked(tar, max_bytes)
            tar.extractall(target, members=members, filter="data")
    except tarfile.FilterError as exc:
        raise ArchiveUnsafe(f"the archive has an unsafe entry: {exc}") from None
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        # OSError: gzip's "Not a gzipped file" is one, as is a full disk.
        raise ArchiveInvalid(f"the archive cannot be unpacked: {_reason(exc)}") from None
    if not (target / SERVER_DLL).is_file():
        raise ArchiveInvalid(
            f"the archive has no {SERVER_DLL} at its top level: not a Vintage Story server"
        )
    # The files must be on disk before a link points at them: a crash right after the
    # switch must not leave a current version of empty files.
    os.sync()
    return total


def _checked(tar: tarfile.TarFile, max_bytes: int) -> tuple[list[tarfile.TarInfo], int]:
    members: list[tarfile.TarInfo] = []
    total = 0
    for member in tar:
        if len(members) >= MAX_ENTRIES:
            raise UnpackedTooLarge(f"the archive has more than {MAX_ENTRIES} entries")
        problem = entry_problem(member)
        if problem is not None:
            raise ArchiveUnsafe(f"the archive entry {_shown(member.name)} {problem}")
        total += member.size if member.isreg() else 0
        if total > max_bytes:
            raise UnpackedTooLarge(
                f"the archive unpacks to more than {max_bytes} bytes "
                "(VS_INSTALL_MAX_UNPACKED_BYTES)"
            )
        members.append(member)
    return members, total


def entry_problem(member: tarfile.TarInfo) -> str | None:
    """Why `member` may not be unpacked, in words following its name; None when it may."""
    name = member.name
    if not name or "\x00" in name:
        return "has no usable name"
    if name.startswith("/") or PurePosixPath(name).is_absolute():
        return "is an absolute path"
    if ".." in PurePosixPath(name).parts:
        return "leads out of the target directory (..)"
    if member.ischr() or member.isblk():
        return "is a device file"
    if member.isfifo():
        return "is a FIFO"
    if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
        return "is not a file, a directory or a link"
    if member.issym():
        link = member.linkname
        if link.startswith("/"):
            return f"is a symlink to the absolute path {_shown(link)}"
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), link))
        if resolved == ".." or resolved.startswith("../"):
            return f"is a symlink pointing outside the target directory ({_shown(link)})"
    if member.islnk():
        link = member.linkname
        if link.startswith("/") or ".." in PurePosixPath(link).parts:
            return f"is a hard link outside the target directory ({_shown(link)})"
    return None


def _shown(name: str) -> str:
    return repr(name if len(name) <= 120 else name[:117] + "...")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
