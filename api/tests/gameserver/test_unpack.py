"""The safe unpacker: the official tarball's header quirk, and every kind of unsafe entry."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import pytest

from tests.support.server_tarball import Entry, server_files, server_tarball
from vintagestory_api.gameserver.errors import ArchiveInvalid, ArchiveUnsafe, UnpackedTooLarge
from vintagestory_api.gameserver.unpack import unpack

LIMIT = 10 * 1024 * 1024


@pytest.fixture
def target(tmp_path: Path) -> Path:
    path = tmp_path / "box" / "staging"
    path.mkdir(parents=True)
    return path


def _archive(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "server.tar.gz"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("quirk", ["gnu", "ustar"])
def test_the_time_fields_read_as_a_prefix_are_dropped(
    tmp_path: Path, target: Path, quirk: str
) -> None:
    archive = _archive(tmp_path, server_tarball("1.21.6", quirk=quirk))  # type: ignore[arg-type]
    # The reproduction is faithful: plain tarfile puts every entry under a numeric directory.
    with tarfile.open(archive) as plain:
        assert "15070731126/VintagestoryServer.dll" in plain.getnames()
    total = unpack(archive, target, max_bytes=LIMIT)
    files = server_files("1.21.6")
    assert total == sum(len(data) for data in files.values())
    assert sorted(p.name for p in target.iterdir()) == [
        "Lib",
        "Mods",
        "VintagestoryServer.dll",
        "assets",
        "fake_vs_server.py",
        "server.py",
    ]
    for name, data in files.items():
        assert (target / name).read_bytes() == data
    assert (target / "Lib" / "libvs.so").readlink() == Path("libvs.so.1")
    assert (target / "server.py").stat().st_mode & 0o100


def test_a_real_ustar_prefix_is_kept(tmp_path: Path, target: Path) -> None:
    # A POSIX writer splits a path over 100 characters into the prefix field and the name.
    deep = "assets/survival/" + "x" * 90 + "/blocktypes.json"
    raw = _as_ustar({**server_files("1.21.6"), deep: b"{}"})
    headers = [raw[i : i + 512] for i in range(0, len(raw), 512)]
    assert any(h[345:360] == b"assets/survival" for h in headers)
    unpack(_archive(tmp_path, gzip.compress(raw)), target, max_bytes=LIMIT)
    assert (target / deep).read_bytes() == b"{}"


def _as_ustar(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


UNSAFE = [
    (Entry("../evil.txt", data=b"x"), "leads out of the target directory"),
    (Entry("assets/../../evil.txt", data=b"x"), "leads out of the target directory"),
    (Entry("/tmp/evil.txt", data=b"x"), "is an absolute path"),
    (Entry("Lib/out", "symlink", link="../../outside"), "symlink pointing outside"),
    (Entry("Lib/etc", "symlink", link="/etc"), "symlink to the absolute path"),
    (Entry("Lib/hard", "hardlink", link="../../outside"), "hard link outside"),
    (Entry("Lib/pipe", "fifo"), "is a FIFO"),
    (Entry("Lib/null", "chardev"), "is a device file"),
]


@pytest.mark.parametrize(("entry", "message"), UNSAFE, ids=[e.name for e, _ in UNSAFE])
def test_an_unsafe_entry_refuses_the_archive_before_anything_is_written(
    tmp_path: Path, target: Path, entry: Entry, message: str
) -> None:
    archive = _archive(tmp_path, server_tarball("1.21.6", extra=[entry]))
    with pytest.raises(ArchiveUnsafe) as caught:
        unpack(archive, target, max_bytes=LIMIT)
    assert message in caught.value.message
    assert repr(entry.name) in caught.value.message
    assert list(target.iterdir()) == []
    assert sorted(p.name for p in target.parent.iterdir()) == ["staging"]


def test_a_link_through_an_earlier_symlink_is_caught_by_the_data_filter(
    tmp_path: Path, target: Path
) -> None:
    # Each link alone stays inside by name ("here/up" -> ".." is "."), but "here" is "." on
    # disk, so "here/up" would point at the target's parent.
    extra = [Entry("here", "symlink", link="."), Entry("here/up", "symlink", link="..")]
    archive = _archive(tmp_path, server_tarball("1.21.6", extra=extra))
    with pytest.raises(ArchiveUnsafe) as caught:
        unpack(archive, target, max_bytes=LIMIT)
    assert "here/up" in caught.value.message
    assert sorted(p.name for p in target.parent.iterdir()) == ["staging"]


def test_more_than_the_unpacked_cap_is_refused(tmp_path: Path, target: Path) -> None:
    archive = _archive(tmp_path, server_tarball("1.21.6"))
    with pytest.raises(UnpackedTooLarge) as caught:
        unpack(archive, target, max_bytes=20_000)
    assert "more than 20000 bytes" in caught.value.message
    assert list(target.iterdir()) == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"<html>not found</html>", "cannot be unpacked"),
        (server_tarball("1.21.6")[:3000], "cannot be unpacked"),
    ],
    ids=["not_gzip", "truncated"],
)
def test_an_archive_that_cannot_be_read_is_invalid(
    tmp_path: Path, target: Path, data: bytes, message: str
) -> None:
    with pytest.raises(ArchiveInvalid) as caught:
        unpack(_archive(tmp_path, data), target, max_bytes=LIMIT)
    assert message in caught.value.message


def test_an_archive_without_the_server_is_invalid(tmp_path: Path, target: Path) -> None:
    files = {"readme.txt": b"hello"}
    archive = _archive(tmp_path, server_tarball("1.21.6", files=files))
    with pytest.raises(ArchiveInvalid) as caught:
        unpack(archive, target, max_bytes=LIMIT)
    assert "no VintagestoryServer.dll at its top level" in caught.value.message
