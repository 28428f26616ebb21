"""Game server tarballs built by tests, and publishing them on the stub server as a CDN would.

A tarball carries the fake server (`fake_vs_server.py`) and a `server.py` that execs it with
the tarball's version (and mode) set, so `VS_SERVER_COMMAND="python {server_dir}/server.py"`
runs whatever version is current; plus a placeholder `VintagestoryServer.dll`, assets, a Mods
folder and a symlink inside the tree, as the real one has.

`quirk="gnu"` reproduces the official tarballs' headers: GNU format, with the access and change
times written where a POSIX header keeps its path prefix, which `tarfile` then reads as a
numeric leading directory (`15070731126/VintagestoryServer.dll`). `quirk="ustar"` writes the
same numbers into a POSIX header.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tests.support.fake_vs_client import FAKE_SERVER_SCRIPT
from tests.support.stub_server import StubServer

# 0o15070731126 is 1759752790: a time in October 2025, as upstream saw in the real tarball.
ATIME = 0o15070731126
CTIME = 0o15070731200
CDN = "https://cdn.vintagestory.at"

_LAUNCHER = """\
import os, sys
here = os.path.dirname(os.path.abspath(__file__))
os.environ["FAKE_VS_VERSION"] = {version!r}
os.environ["FAKE_VS_MODE"] = {mode!r}
# exec, not a child: the API must hold and signal the server process itself.
os.execv(sys.executable, [sys.executable, os.path.join(here, "fake_vs_server.py"), *sys.argv[1:]])
"""


@dataclass
class Entry:
    """One extra archive entry; `data` for a regular file."""

    name: str
    kind: Literal["file", "dir", "symlink", "hardlink", "fifo", "chardev"] = "file"
    data: bytes = b""
    link: str = ""


def server_files(version: str, mode: str = "normal") -> dict[str, bytes]:
    """The regular files of a test server tarball, by path."""
    return {
        "VintagestoryServer.dll": f"placeholder for {version}\n".encode(),
        "server.py": _LAUNCHER.format(version=version, mode=mode).encode(),
        "fake_vs_server.py": FAKE_SERVER_SCRIPT.read_bytes(),
        "assets/version.txt": f"{version}\n".encode(),
        "Lib/libvs.so.1": b"\x7fELF not really\n",
        "Mods/do_not_add_mods_here.txt": b"Put mods in the data folder's Mods\n",
    }


def server_tarball(
    version: str,
    *,
    mode: str = "normal",
    quirk: Literal["gnu", "ustar"] | None = "gnu",
    extra: Sequence[Entry] = (),
    files: dict[str, bytes] | None = None,
) -> bytes:
    """A gzip tarball of a server of `version` (the fake), with `extra` entries appended."""
    entries = [Entry("assets", "dir"), Entry("Lib", "dir"), Entry("Mods", "dir")]
    for name, data in (server_files(version, mode) if files is None else files).items():
        entries.append(Entry(name, "file", data))
    entries.append(Entry("Lib/libvs.so", "symlink", link="libvs.so.1"))
    entries.extend(extra)
    fmt = tarfile.USTAR_FORMAT if quirk == "ustar" else tarfile.GNU_FORMAT
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=fmt) as tar:
        for entry in entries:
            tar.addfile(*_member(entry))
    data = raw.getvalue()
    if quirk is not None:
        data = with_time_fields(data)
    return gzip.compress(data, mtime=0)


def _member(entry: Entry) -> tuple[tarfile.TarInfo, io.BytesIO | None]:
    info = tarfile.TarInfo(entry.name)
    info.mtime = 1_700_000_000
    kinds = {
        "file": tarfile.REGTYPE,
        "dir": tarfile.DIRTYPE,
        "symlink": tarfile.SYMTYPE,
        "hardlink": tarfile.LNKTYPE,
        "fifo": tarfile.FIFOTYPE,
        "chardev": tarfile.CHRTYPE,
    }
    info.type = kinds[entry.kind]
    info.mode = 0o755 if entry.kind == "dir" or entry.name.endswith(".py") else 0o644
    info.linkname = entry.link
    if entry.kind == "file":
        info.size = len(entry.data)
        return info, io.BytesIO(entry.data)
    return info, None


def with_time_fields(tar: bytes) -> bytes:
    """`tar` with an access and a change time in every header's bytes 345-368."""
    data = bytearray(tar)
    with tarfile.open(fileobj=io.BytesIO(tar), mode="r:") as archive:
        offsets = [member.offset for member in archive]
    for offset in offsets:
        header = data[offset : offset + 512]
        header[345:357] = b"%011o\x00" % ATIME
        header[357:369] = b"%011o\x00" % CTIME
        header[148:156] = b" " * 8
        header[148:156] = b"%06o\x00 " % sum(header)
        data[offset : offset + 512] = header
    return bytes(data)


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


@dataclass
class StubCdn:
    """Publishes tarballs on the stub server: in its `stable.json` (with their md5 and a CDN
    URL) and at that URL's path, which VS_CDN_URL points at the stub."""

    stub: StubServer
    published: dict[str, dict[str, object]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.stub.versions_url

    def publish(self, version: str, tarball: bytes, *, md5_hex: str | None = None) -> str:
        """Add `version` (the newest published becomes latest); the tarball's path."""
        filename = f"vs_server_linux-x64_{version}.tar.gz"
        path = f"/gamefiles/stable/{filename}"
        self.stub.bodies[path] = tarball
        self.published[version] = {
            "filename": filename,
            "filesize": f"{len(tarball) / 1e6:.1f} MB",
            "md5": md5_hex or md5(tarball),
            "urls": {"cdn": f"{CDN}{path}", "local": f"https://account.vintagestory.at{path}"},
        }
        newest = version
        body = {
            v: {"linuxserver": {**entry, "latest": int(v == newest)}}
            for v, entry in self.published.items()
        }
        self.stub.bodies["/stable.json"] = json.dumps(body).encode()
        return path


def tree_digest(root: Path) -> dict[str, str]:
    """Every file, link and directory under `root` with its content (or link target)."""
    found: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            found[rel] = "-> " + str(path.readlink())
        elif path.is_dir():
            found[rel] = "dir"
        else:
            found[rel] = md5(path.read_bytes()) + f" {path.stat().st_mode & 0o777:o}"
    return found
