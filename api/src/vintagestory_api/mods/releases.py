"""A mod's releases in the mod database, and which one to install for a game version (pure).

A release's `tags` are the game versions it is made for. Without an asked-for version the
newest release tagged for the installed game version is taken; failing that, the newest tagged
for the same minor version (`1.22.x`), flagged as not verified; failing that, none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from vintagestory_api.errors import clip, clip_list
from vintagestory_api.kit.http import UpstreamError
from vintagestory_api.kit.version_numbers import newest, version_key

from .errors import InvalidModReference, NoCompatibleRelease, ReleaseNotFound

Compatibility = Literal["verified", "not_verified", "incompatible", "unknown"]

# What the mod database resolves in `/api/mod/{x}`: a numeric id or a modinfo modid.
_MODID = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
CANONICAL_SITE = "mods.vintagestory.at"


@dataclass(frozen=True)
class Release:
    version: str
    filename: str
    url: str | None
    modidstr: str | None
    tags: frozenset[str]


@dataclass(frozen=True)
class ModRecord:
    """One mod as `/api/mod/{x}` describes it."""

    id: int | None
    name: str | None
    modidstrs: tuple[str, ...]
    releases: tuple[Release, ...]


@dataclass(frozen=True)
class ModReference:
    """What the caller named: a lookup key for `/api/mod/{x}`, or a page to find in the list."""

    key: str | None = None
    alias: str | None = None
    assetid: int | None = None

    def __str__(self) -> str:
        if self.key is not None:
            return self.key
        return self.alias if self.alias is not None else f"asset {self.assetid}"


@dataclass(frozen=True)
class Selection:
    release: Release
    compatibility: Compatibility


def parse_reference(mod: int | str, *, site_host: str | None) -> ModReference:
    """A modid, a numeric id, or a mod page URL (`/<alias>` or `/show/mod/<assetid>`)."""
    if isinstance(mod, int):
        if mod < 1:
            raise InvalidModReference("body.mod: a numeric mod id is at least 1")
        return ModReference(key=str(mod))
    text = mod.strip()
    if _MODID.fullmatch(text):
        return ModReference(key=text)
    parts = urlsplit(text) if text.lower().startswith(("http://", "https://")) else None
    hosts = {CANONICAL_SITE, f"www.{CANONICAL_SITE}", site_host}
    if parts is not None and parts.hostname in hosts:
        segments = [s for s in parts.path.split("/") if s]
        if len(segments) == 1 and _MODID.fullmatch(segments[0]):
            return ModReference(alias=segments[0])
        if len(segments) == 3 and segments[:2] == ["show", "mod"] and segments[2].isdigit():
            return ModReference(assetid=int(segments[2]))
    raise InvalidModReference(
        f"body.mod: {clip(text)!r} is not a mod id, a numeric mod database id or a mod page "
        f"URL on {CANONICAL_SITE} (https://{CANONICAL_SITE}/<name> or /show/mod/<number>)"
    )


def parse_record(url: str, payload: Any) -> ModRecord | None:
    """The mod in an `/api/mod/{x}` answer; None when the database does not know it."""
    if not isinstance(payload, dict):
        raise UpstreamError(url, "expected a JSON object")
    code = str(payload.get("statuscode", ""))
    if code == "404":
        return None
    if code != "200":
        raise UpstreamError(url, f"mod database answered statuscode {code or '(missing)'}")
    mod = payload.get("mod")
    raw_releases = mod.get("releases") if isinstance(mod, dict) else None
    if not isinstance(mod, dict) or not isinstance(raw_releases, list):
        raise UpstreamError(url, "answer has no mod object with a releases list")
    releases = tuple(r for r in map(_release, raw_releases) if r is not None)
    modid = mod.get("modid")
    name = mod.get("name")
    return ModRecord(
        id=modid if isinstance(modid, int) and not isinstance(modid, bool) else None,
        name=name if isinstance(name, str) else None,
        modidstrs=tuple(dict.fromkeys(r.modidstr for r in releases if r.modidstr)),
        releases=releases,
    )


def find_in_list(payload: Any, ref: ModReference) -> int | None:
    """The numeric id of the `/api/mods` entry whose page `ref` names."""
    mods = payload.get("mods") if isinstance(payload, dict) else None
    for entry in mods if isinstance(mods, list) else ():
        if not isinstance(entry, dict):
            continue
        alias, assetid, modid = entry.get("urlalias"), entry.get("assetid"), entry.get("modid")
        if not isinstance(modid, int):
            continue
        if ref.alias is not None and isinstance(alias, str) and alias.lower() == ref.alias.lower():
            return modid
        if ref.assetid is not None and assetid == ref.assetid:
            return modid
    return None


def select_release(
    name: str, record: ModRecord, *, game_version: str | None, version: str | None
) -> Selection:
    """The release to install; raises when none fits (see the module)."""
    if version is not None:
        release = next((r for r in record.releases if _same(r.version, version)), None)
        if release is None:
            raise ReleaseNotFound(
                f"{name} has no release {clip(version)}; releases: "
                f"{clip_list(r.version for r in record.releases) or 'none'}"
            )
        return Selection(release, compatibility(release, game_version))
    if game_version is None:
        # Nothing to check against (no game installed yet): the newest, flagged unknown.
        best = _newest(list(record.releases))
        if best is None:
            raise NoCompatibleRelease(f"{name} has no release in the mod database")
        return Selection(best, "unknown")
    for kind in ("verified", "not_verified"):
        fitting = [r for r in record.releases if compatibility(r, game_version) == kind]
        best = _newest(fitting)
        if best is not None:
            return Selection(best, kind)
    raise NoCompatibleRelease(
        f"{name} has no release for game {game_version} (nor for {_minor_text(game_version)}); "
        f"releases: {describe_releases(record.releases)}"
    )


def compatibility(release: Release, game_version: str | None) -> Compatibility:
    if game_version is None:
        return "unknown"
    if any(_same(tag, game_version) for tag in release.tags):
        return "verified"
    minor = minor_of(game_version)
    if minor is not None and any(minor_of(tag) == minor for tag in release.tags):
        return "not_verified"
    return "incompatible"


def describe_releases(releases: tuple[Release, ...]) -> str:
    shown = [
        f"{r.version} ({', '.join(sorted(r.tags, key=_sort_key)) or 'no game versions'})"
        for r in releases
    ]
    return clip_list(shown, limit=8) or "none"


def minor_of(version: str) -> tuple[int, int] | None:
    match = re.match(r"^v?(\d+)\.(\d+)", version.strip())
    return (int(match[1]), int(match[2])) if match else None


def _minor_text(version: str) -> str:
    minor = minor_of(version)
    return f"{minor[0]}.{minor[1]}.x" if minor else "its minor version"


def _same(a: str, b: str) -> bool:
    key = version_key(a)
    return a.strip() == b.strip() or (key is not None and key == version_key(b))


def _newest(releases: list[Release]) -> Release | None:
    best = newest([r.version for r in releases])
    if best is None:
        # Unparseable versions: the database lists releases newest first.
        return releases[0] if releases else None
    return next(r for r in releases if r.version == best)


def _sort_key(tag: str) -> tuple[tuple[int, ...], int, int]:
    return version_key(tag) or ((), 0, 0)


def _release(raw: Any) -> Release | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("modversion"), str):
        return None
    tags = raw.get("tags")
    tags = tags if isinstance(tags, list) else []
    url, filename, modidstr = raw.get("mainfile"), raw.get("filename"), raw.get("modidstr")
    return Release(
        version=raw["modversion"],
        filename=filename if isinstance(filename, str) and filename else "",
        url=url if isinstance(url, str) and url.startswith(("http://", "https://")) else None,
        modidstr=modidstr if isinstance(modidstr, str) and modidstr else None,
        tags=frozenset(t.strip().removeprefix("v") for t in tags if isinstance(t, str)),
    )


@dataclass(frozen=True)
class Verdict:
    compatibility: Compatibility
    compatible_release: str | None
    reason: str


def judge_installed(
    modid: str, version: str | None, game_floor: str | None, record: ModRecord, game_version: str
) -> Verdict:
    """Whether the installed `version` of a mod suits `game_version`, and what would."""
    try:
        suggestion: str | None = select_release(
            modid, record, game_version=game_version, version=None
        ).release.version
    except NoCompatibleRelease:
        suggestion = None
    floor_key = version_key(game_floor) if game_floor else None
    game_key = version_key(game_version)
    if floor_key is not None and game_key is not None and game_key < floor_key:
        return Verdict("incompatible", suggestion, f"{modid} {version} needs game {game_floor}+")
    installed = next((r for r in record.releases if version and _same(r.version, version)), None)
    if installed is None:
        reason = f"the mod database lists no release {version} of {modid}"
        return Verdict("unknown", suggestion, reason)
    made_for = ", ".join(sorted(installed.tags, key=_sort_key)) or "no game version"
    reason = f"{modid} {version} is made for {made_for}"
    return Verdict(compatibility(installed, game_version), suggestion, reason)
