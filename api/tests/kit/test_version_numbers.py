from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.stub_server import FIXTURES
from vintagestory_api.kit.version_numbers import (
    is_newer,
    newest,
    read_installed_game_version,
    version_key,
)
from vintagestory_api.versions.service import parse_channel


def _sorted(versions: list[str]) -> list[str]:
    return sorted(versions, key=lambda v: version_key(v) or ((), 0, 0))


def test_release_candidates_come_before_their_release() -> None:
    assert _sorted(["1.22.0", "1.22.0-rc.10", "1.21.6", "1.22.0-rc.9"]) == [
        "1.21.6",
        "1.22.0-rc.9",
        "1.22.0-rc.10",
        "1.22.0",
    ]


def test_numbers_compare_numerically_not_as_text() -> None:
    assert _sorted(["1.9.14", "1.20.12", "1.18.15"]) == ["1.9.14", "1.18.15", "1.20.12"]


def test_dev_before_pre_before_rc() -> None:
    assert _sorted(["2.0.0-rc.1", "2.0.0-pre.8", "2.0.0-dev.3", "2.0.0"]) == [
        "2.0.0-dev.3",
        "2.0.0-pre.8",
        "2.0.0-rc.1",
        "2.0.0",
    ]


@pytest.mark.parametrize(
    ("candidate", "current", "expected"),
    [
        ("1.12.1", "1.12.0", True),
        ("1.12.0", "1.12.0", False),
        ("1.2", "1.2.0", False),
        ("v1.3.0", "1.2.9", True),
        ("2.0.0", "2.0.0-pre.8", True),
        ("2.0.0-pre.8", "1.12.1", True),
        ("1.0.0-beta", "1.0.0-alpha", True),
        ("not a version", "1.0.0", False),
        ("1.0.0", None, False),
        (None, "1.0.0", False),
    ],
)
def test_is_newer(candidate: str | None, current: str | None, expected: bool) -> None:
    assert is_newer(candidate, current) is expected


def test_newest_ignores_unparseable() -> None:
    assert newest(["x", "0.9.4", "0.9.6", "0.9.6-rc.1"]) == "0.9.6"
    assert newest([]) is None


def test_installed_game_version_is_read_or_null(tmp_path: Path) -> None:
    assert read_installed_game_version(tmp_path) is None
    (tmp_path / "server").mkdir()
    (tmp_path / "server" / "current_version").write_text("1.21.3\n")
    assert read_installed_game_version(tmp_path) == "1.21.3"
    (tmp_path / "server" / "current_version").write_text("garbage\x00")
    assert read_installed_game_version(tmp_path) is None


def test_stable_fixture_is_ordered_newest_first_with_one_latest() -> None:
    versions = parse_channel("stable", json.loads((FIXTURES / "stable.json").read_bytes()))
    names = [v.version for v in versions]
    assert names[0] == "1.22.7"
    assert names == sorted(names, key=lambda v: version_key(v) or ((), 0, 0), reverse=True)
    assert [v.version for v in versions if v.is_latest] == ["1.22.7"]
    first = versions[0]
    assert first.filename == "vs_server_linux-x64_1.22.7.tar.gz"
    assert first.filesize == "51.5 MB"
    assert first.url.startswith("https://cdn.vintagestory.at/")


def test_unstable_fixture_orders_rc_numbers_numerically() -> None:
    versions = parse_channel("unstable", json.loads((FIXTURES / "unstable.json").read_bytes()))
    names = [v.version for v in versions]
    assert names[:4] == ["1.22.7-rc.1", "1.22.0-rc.10", "1.22.0-rc.9", "1.22.0-rc.8"]
    assert versions[0].is_latest


def test_latest_flag_wins_over_key_order_and_versions_without_server_are_skipped() -> None:
    entry = {
        "filename": "f",
        "filesize": "1 MB",
        "md5": "m",
        "urls": {"cdn": "https://c/f", "local": "https://l/f"},
    }
    payload = {
        "1.0.1": {"linux": {**entry, "latest": 1}},  # no Linux server build
        "0.9.0": {"linuxserver": {**entry, "latest": 0}},
        "1.0.0": {"linuxserver": {**entry, "latest": 1}},
    }
    versions = parse_channel("x", payload)
    assert [(v.version, v.is_latest) for v in versions] == [("1.0.0", True), ("0.9.0", False)]
