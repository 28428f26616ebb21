from __future__ import annotations

import json
import os
import random
import signal
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from tests.support.damage import KINDS, damage, release_fifo
from vintagestory_api.kit.file_reads import NotARegularFile
from vintagestory_api.kit.state_files import (
    CorruptStateFile,
    load_state,
    parse_json_bytes,
    quarantine,
    read_json,
    remove_stale_temp_files,
    write_atomic,
    write_json,
)


def _dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("not an object")
    return value


def test_write_atomic_creates_owner_only_file_and_keeps_previous_as_backup(tmp_path: Path) -> None:
    path = tmp_path / "state" / "x.json"
    write_atomic(path, b"one")
    write_atomic(path, b"two")
    assert path.read_bytes() == b"two"
    assert (tmp_path / "state" / "x.json.bak").read_bytes() == b"one"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.json", "x.json.bak"]


def test_write_atomic_failure_leaves_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "x.json"
    write_atomic(path, b"old")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space"):
        write_atomic(path, b"new", keep_backup=False)
    monkeypatch.undo()
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_remove_stale_temp_files_removes_only_temp_files(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("{}")
    (tmp_path / "a.json.tmp-123-456").write_text("{")
    (tmp_path / "a.json.bak.tmp-123-456").write_text("{")
    removed = remove_stale_temp_files(tmp_path)
    assert sorted(p.name for p in removed) == ["a.json.bak.tmp-123-456", "a.json.tmp-123-456"]
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_quarantine_never_overwrites_an_earlier_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    kept = []
    for content in (b"first", b"second", b"third"):
        path.write_bytes(content)
        kept.append(quarantine(path))
    assert [p.read_bytes() for p in kept] == [b"first", b"second", b"third"]
    assert all(p.name.startswith("a.json.corrupt-") for p in kept)
    assert not path.exists()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty"),
        (b"  \n", "empty"),
        (b'{"a": 1', "not valid JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"hello", "not valid JSON"),
        (b'{"a": NaN}', "NaN is not allowed"),
        (b'{"a": Infinity}', "Infinity is not allowed"),
        (b'{"a": -Infinity}', "Infinity is not allowed"),
        (b'{"a": 1e999}', "out of range"),
        (b'{"a": ' + b"9" * 5000 + b"}", "too large"),
        (b"[" * 100_000 + b"]" * 100_000, "nesting deeper"),
        (b'{"a": ' + b"[" * 70 + b"]" * 70 + b"}", "nesting deeper"),
        (b'{"a": "' + b"x" * (1024 * 1024) + b'"}', "larger than"),
    ],
)
def test_parse_json_bytes_rejects_bad_content_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(CorruptStateFile) as info:
        parse_json_bytes(Path("x.json"), raw)
    assert reason in info.value.reason


def test_parse_json_bytes_accepts_brackets_inside_strings() -> None:
    value = parse_json_bytes(Path("x.json"), json.dumps({"a": "[" * 500}).encode())
    assert value == {"a": "[" * 500}


def test_read_json_round_trips_write_json(tmp_path: Path) -> None:
    write_json(tmp_path / "a.json", {"b": [1, 2.5, "x"], "a": None})
    assert read_json(tmp_path / "a.json") == {"a": None, "b": [1, 2.5, "x"]}


def test_load_state_missing_file_and_backup_is_none(tmp_path: Path) -> None:
    loaded = load_state(tmp_path / "a.json", _dict, event="x_corrupt")
    assert (loaded.value, loaded.source, loaded.corrupt_reason) == (None, "none", None)


def test_load_state_quarantines_bad_file_and_uses_backup(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    write_json(path, {"v": 1})
    write_json(path, {"v": 2})
    path.write_bytes(b"{broken")
    loaded = load_state(path, _dict, event="x_corrupt")
    assert loaded.value == {"v": 1}
    assert loaded.source == "backup"
    assert loaded.quarantined_to is not None
    assert loaded.quarantined_to.read_bytes() == b"{broken"
    assert "not valid JSON" in (loaded.corrupt_reason or "")


def test_load_state_bad_file_and_bad_backup_gives_none(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_bytes(b"[]")
    (tmp_path / "a.json.bak").write_bytes(b"")
    loaded = load_state(path, _dict, event="x_corrupt")
    assert (loaded.value, loaded.source) == (None, "none")
    assert loaded.corrupt_reason == "not an object"


# Each version is a complete document whose "items" list has exactly "n" entries and whose padding
# depends on n, so a torn or mixed file cannot pass as a complete version.
def _version(n: int) -> dict[str, Any]:
    return {"n": n, "items": [n] * (n % 400), "pad": "x" * (n % 5000)}


def _check_complete(path: Path) -> int:
    value = read_json(path)
    n = int(value["n"])
    assert value == _version(n)
    return n


def _start_writer(path: Path, first: int) -> tuple[int, int]:
    """Fork a child that rewrites `path` forever, one byte on the pipe per finished write."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: write until killed, never return into pytest
        try:
            os.close(read_end)
            n = first
            while True:
                n += 1
                write_json(path, _version(n))
                os.write(write_end, b".")
        finally:
            os._exit(1)
    os.close(write_end)
    return pid, read_end


def test_file_is_always_one_complete_version_when_the_writer_is_killed(tmp_path: Path) -> None:
    # A forked child rather than a fresh interpreter: 100 interpreter start-ups would take a
    # minute; a fork is a subprocess just the same for SIGKILL and the filesystem.
    path = tmp_path / "state" / "settings.json"
    rng = random.Random(1234)
    last = 0
    for _ in range(100):
        pid, progress = _start_writer(path, last)
        try:
            # Wait for the first complete write (blocking read: no blind sleep), then kill at a
            # random moment, which lands anywhere inside the following writes.
            assert os.read(progress, 1) == b"."
            time.sleep(rng.uniform(0, 0.003))
        finally:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(progress)
        n = _check_complete(path)
        assert n > last
        last = n
        backup = path.with_name(path.name + ".bak")
        if backup.exists():  # none after the very first write
            # Killed between linking the backup and the replace, both name the same version.
            assert _check_complete(backup) <= n
    remove_stale_temp_files(path.parent)
    assert sorted(p.name for p in path.parent.iterdir()) == ["settings.json", "settings.json.bak"]


@pytest.mark.parametrize("kind", KINDS)
def test_load_state_sets_an_unreadable_file_aside_and_uses_the_backup(
    tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "a.json"
    write_json(path, {"v": 1})
    write_json(path, {"v": 2})
    damage(path, kind)
    try:
        loaded = load_state(path, _dict, event="x_corrupt")
    finally:
        release_fifo(path)
    assert (loaded.value, loaded.source) == ({"v": 1}, "backup")
    assert loaded.corrupt_reason
    assert loaded.quarantined_to is not None
    assert loaded.quarantined_to.name.startswith("a.json.corrupt-")
    assert not path.exists()


def test_load_state_names_what_is_wrong_with_a_file_that_is_not_a_file(tmp_path: Path) -> None:
    damage(tmp_path / "d.json", "directory")
    damage(tmp_path / "f.json", "fifo")
    assert "directory" in (load_state(tmp_path / "d.json", _dict, event="x").corrupt_reason or "")
    assert "FIFO" in (load_state(tmp_path / "f.json", _dict, event="x").corrupt_reason or "")


def test_load_state_keeps_running_when_the_bad_file_cannot_be_set_aside(tmp_path: Path) -> None:
    # A name at the filesystem's limit: `<name>.corrupt-<ts>` is too long, so the rename fails
    # for real (as it does in a read-only directory).
    path = tmp_path / ("s" * 240 + ".json")
    path.write_bytes(b"{broken")
    with capture_logs() as logs:
        loaded = load_state(path, _dict, event="x_corrupt")
    assert (loaded.value, loaded.source, loaded.quarantined_to) == (None, "none", None)
    assert "could not be set aside" in (loaded.problem or "")
    assert path.read_bytes() == b"{broken"
    (entry,) = [e for e in logs if e["event"] == "x_corrupt"]
    assert entry["log_level"] == "error"
    assert entry["set_aside_failed"]


@pytest.mark.parametrize("kind", KINDS)
def test_load_state_sets_an_unreadable_backup_aside(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "a.json"
    path.write_bytes(b"{broken")
    backup = tmp_path / "a.json.bak"
    damage(backup, kind)
    try:
        loaded = load_state(path, _dict, event="x_corrupt")
    finally:
        release_fifo(backup)
    assert (loaded.value, loaded.source) == (None, "none")
    assert not backup.exists()
    assert len(list(tmp_path.glob("a.json.bak.corrupt-*"))) == 1


def test_read_json_of_a_fifo_fails_at_once_instead_of_waiting_for_a_writer(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a.json"
    damage(path, "fifo")
    try:
        with pytest.raises(NotARegularFile, match="FIFO"):
            read_json(path)
    finally:
        release_fifo(path)


def test_write_atomic_sets_a_backup_that_is_not_a_file_aside(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    write_atomic(path, b"one")
    damage(tmp_path / "a.json.bak", "directory")
    write_atomic(path, b"two")
    assert path.read_bytes() == b"two"
    assert (tmp_path / "a.json.bak").read_bytes() == b"one"
    (kept,) = tmp_path.glob("a.json.bak.corrupt-*")
    assert (kept / "left-here").exists()
