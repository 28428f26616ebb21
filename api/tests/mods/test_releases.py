"""Release choice for a game version and reading what the caller named, on the real records."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.stub_server import FIXTURES
from vintagestory_api.mods.errors import InvalidModReference, NoCompatibleRelease
from vintagestory_api.mods.releases import (
    ModRecord,
    ModReference,
    parse_record,
    parse_reference,
    select_release,
)


def _record(name: str) -> ModRecord:
    payload: Any = json.loads((FIXTURES / f"mod-{name}.json").read_bytes())
    record = parse_record("http://db/api/mod/x", payload)
    assert record is not None
    return record


@pytest.mark.parametrize(
    ("game", "version", "compatibility"),
    [
        ("1.21.1", "1.12.1", "verified"),
        ("1.21.3", "1.12.1", "verified"),
        ("1.21.9", "1.12.1", "not_verified"),
        ("1.20.11", "1.8.1", "verified"),
        ("1.20.2", "1.8.1", "not_verified"),
        (None, "1.12.1", "unknown"),
    ],
)
def test_newest_release_for_the_game_version_else_its_minor(
    game: str | None, version: str, compatibility: str
) -> None:
    chosen = select_release("carryon", _record("carryon"), game_version=game, version=None)
    assert (chosen.release.version, chosen.compatibility) == (version, compatibility)


def test_no_release_for_the_minor_names_every_release() -> None:
    with pytest.raises(NoCompatibleRelease) as caught:
        select_release("smex", _record("smex"), game_version="1.21.3", version=None)
    assert caught.value.message == (
        "smex has no release for game 1.21.3 (nor for 1.21.x); releases: 0.9.6 (1.22.0, 1.22.1, "
        "1.22.2, 1.22.3, 1.22.4, 1.22.5, 1.22.6), 0.9.4 (1.22.0, 1.22.1, 1.22.2, 1.22.3)"
    )


def test_the_record_reads_releases_urls_and_modid() -> None:
    record = _record("carryon")
    assert (record.id, record.modidstrs) == (890, ("carryon",))
    newest = record.releases[0]
    assert newest.url is not None
    assert newest.url.startswith("https://moddbcdn.vintagestory.at/CarryOn-1.21.0_v1.12_")
    assert newest.filename == "CarryOn-1.21.0_v1.12.1.zip"


def test_unknown_mod_is_none() -> None:
    assert parse_record("u", json.loads((FIXTURES / "mod-notfound.json").read_bytes())) is None


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("carryon", ModReference(key="carryon")),
        (890, ModReference(key="890")),
        ("https://mods.vintagestory.at/carryon", ModReference(alias="carryon")),
        ("https://mods.vintagestory.at/show/mod/4405", ModReference(assetid=4405)),
        ("http://127.0.0.1:8000/smex?tab=files", ModReference(alias="smex")),
    ],
)
def test_references(given: str | int, expected: ModReference) -> None:
    assert parse_reference(given, site_host="127.0.0.1") == expected


@pytest.mark.parametrize(
    "given", ["https://example.com/carryon", "carry on", "https://mods.vintagestory.at/a/b", 0]
)
def test_bad_references_name_the_field(given: str | int) -> None:
    with pytest.raises(InvalidModReference) as caught:
        parse_reference(given, site_host="127.0.0.1")
    assert caught.value.message.startswith("body.mod: ")
