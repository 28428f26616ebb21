from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import pytest

from tests.support.stub_server import FIXTURES
from tests.support.vs_wiring import mod_zip
from vintagestory_api.mods.modinfo import (
    MAX_MODINFO_BYTES,
    ModInfoError,
    ModScanner,
    parse_modinfo,
    read_zip_mod,
)


def test_real_carryon_modinfo_is_read() -> None:
    mod = parse_modinfo((FIXTURES / "modinfo.json").read_bytes(), file="c.zip")
    assert (mod.modid, mod.name, mod.version, mod.side) == (
        "carryon",
        "Carry On",
        "1.12.1",
        "universal",
    )


def test_full_modinfo_side_is_normalised() -> None:
    mod = parse_modinfo((FIXTURES / "modinfo-full.json").read_bytes(), file="f.zip")
    assert (mod.modid, mod.version, mod.side) == ("exampleservertweaks", "1.3.0-rc.2", "server")


def test_keys_any_case_comments_and_trailing_commas_are_tolerated() -> None:
    raw = b"""\xef\xbb\xbf{
        // written by hand
        "ModID": "mymod", /* block comment */
        "NAME": "My Mod",
        "Version": "2.0.0-pre.1",
        'side': 'Client',
    }"""
    mod = parse_modinfo(raw, file="m")
    assert (mod.modid, mod.name, mod.version, mod.side) == (
        "mymod",
        "My Mod",
        "2.0.0-pre.1",
        "client",
    )


def test_modid_is_derived_from_name_when_missing() -> None:
    assert (
        parse_modinfo(b'{"name": "Better Ruins!", "version": "1.0"}', file="m").modid
        == "betterruins"
    )


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"version": "1.0"}', "neither a modid nor a name"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"[" * 5000 + b"]" * 5000, "not valid JSON"),
        (b" " * (MAX_MODINFO_BYTES + 1), "larger than"),
    ],
)
def test_broken_modinfo_gives_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(ModInfoError, match=reason):
        parse_modinfo(raw, file="m")


def test_zip_with_modinfo_is_read(tmp_path: Path) -> None:
    path = mod_zip(tmp_path / "smex.zip", (FIXTURES / "modinfo-smex.json").read_bytes())
    assert read_zip_mod(path).modid == "smex"


def test_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "broken.zip"
    path.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(ModInfoError, match="not a readable zip"):
        read_zip_mod(path)


def test_zip_without_modinfo(tmp_path: Path) -> None:
    path = tmp_path / "empty.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("assets/readme.txt", "hi")
    with pytest.raises(ModInfoError, match=r"no modinfo\.json"):
        read_zip_mod(path)


@pytest.mark.parametrize("name", ["../evil.dll", "/etc/passwd", "a/../../b", "C:/win.ini", "..\\x"])
def test_path_traversal_names_are_refused(tmp_path: Path, name: str) -> None:
    path = mod_zip(tmp_path / "evil.zip", b'{"modid": "evil"}', extra={name: b"x"})
    with pytest.raises(ModInfoError, match="unsafe path"):
        read_zip_mod(path)


def test_zip_bomb_by_declared_size_is_refused(tmp_path: Path) -> None:
    # Highly compressible: 1.1 GiB of zeros would take long to build; patch the declared size
    # in the central directory instead, which is what a bomb's reader sees first.
    path = mod_zip(tmp_path / "bomb.zip", b'{"modid": "bomb"}', extra={"big.bin": b"\0" * 1024})
    data = bytearray(path.read_bytes())
    central = data.rfind(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, 0xFFFFFFF0)
    path.write_bytes(bytes(data))
    with pytest.raises(ModInfoError, match="zip bomb"):
        read_zip_mod(path)


def test_modinfo_larger_than_declared_is_cut_off(tmp_path: Path) -> None:
    # The declared size says small, the data inflates to more than the cap.
    big = b'{"modid": "x", "pad": "' + b"a" * (MAX_MODINFO_BYTES + 10) + b'"}'
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("modinfo.json", big)
    data = bytearray(buffer.getvalue())
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        struct.pack_into("<I", data, data.find(signature) + offset, 100)
    path = tmp_path / "liar.zip"
    path.write_bytes(bytes(data))
    with pytest.raises(ModInfoError):
        read_zip_mod(path)


def test_scanner_lists_every_kind_and_never_fails(tmp_path: Path) -> None:
    mods = tmp_path / "Mods"
    mod_zip(mods / "carryon.zip", (FIXTURES / "modinfo.json").read_bytes())
    (mods / "broken.zip").write_bytes(b"nope")
    (mods / "folder").mkdir()
    (mods / "folder" / "modinfo.json").write_text('{"modid": "foldermod", "version": "0.1.0",}')
    (mods / "notamod").mkdir()
    (mods / "Plain.dll").write_bytes(b"MZ")
    (mods / "script.cs").write_text(
        '[assembly: ModInfo("Script Mod", "scriptmod", Version = "1.0.1", Side = "Server")]'
    )
    (mods / "other.cs").write_text("class X {}")
    (mods / "notes.txt").write_text("ignored")
    found = {m.file: m for m in ModScanner(mods).scan()}
    assert set(found) == {
        "broken.zip",
        "carryon.zip",
        "folder",
        "other.cs",
        "Plain.dll",
        "script.cs",
    }
    assert found["broken.zip"].error is not None
    assert found["carryon.zip"].modid == "carryon"
    assert found["folder"].modid == "foldermod"
    assert found["Plain.dll"].modid is None
    assert (found["script.cs"].modid, found["script.cs"].version) == ("scriptmod", "1.0.1")
    assert found["script.cs"].side == "server"
    assert found["other.cs"].modid is None


def test_scanner_rereads_a_changed_file(tmp_path: Path) -> None:
    mods = tmp_path / "Mods"
    scanner = ModScanner(mods)
    assert scanner.scan() == []
    path = mod_zip(mods / "m.zip", b'{"modid": "m", "version": "1.0.0"}')
    assert scanner.scan()[0].version == "1.0.0"
    mod_zip(path, b'{"modid": "m", "version": "1.0.10"}')
    assert scanner.scan()[0].version == "1.0.10"
