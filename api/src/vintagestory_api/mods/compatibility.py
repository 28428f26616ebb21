"""Which installed mods a game version would not verifiably run, from the mod database."""

from __future__ import annotations

from vintagestory_api.errors import ApiError

from .releases import ModReference, Verdict, judge_installed
from .schemas import ModCompatibility
from .sources import ModSource
from .store import Entry


async def incompatible_mods(
    source: ModSource, entries: list[Entry], game_version: str, *, concurrency: int
) -> list[ModCompatibility]:
    """Each of `entries` not verified for `game_version`, with the release to update to when
    the database has one; a mod the database cannot answer for is `unknown`."""
    refs = [ModReference(key=e.mod.modid or "") for e in entries]
    records = await source.lookup_all(refs, concurrency=concurrency)
    results: list[ModCompatibility] = []
    for entry, record in zip(entries, records, strict=True):
        if isinstance(record, ApiError):
            verdict = Verdict("unknown", None, record.message)
        else:
            floor = dict(entry.mod.dependencies).get("game")
            modid = entry.mod.modid or ""
            verdict = judge_installed(modid, entry.mod.version, floor, record, game_version)
        results.append(_compat(entry, verdict))
    return [r for r in results if r.compatibility != "verified"]


def _compat(entry: Entry, verdict: Verdict) -> ModCompatibility:
    return ModCompatibility(
        modid=entry.mod.modid or entry.path.name,
        installed_version=entry.mod.version,
        compatibility=verdict.compatibility,
        compatible_release=verdict.compatible_release,
        reason=verdict.reason,
    )
