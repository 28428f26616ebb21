"""What mods need of each other, from their `modinfo.json` `dependencies` (pure).

A dependency's version is a minimum; `""` (or `"*"`) means any. `game`, `survival` and
`creative` are the game's own mods: a dependency on them is a game version, not a mod.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from vintagestory_api.kit.version_numbers import version_key

from .modinfo import ModFile
from .schemas import InstalledMod, MissingDependency

BUILTIN_MODIDS = frozenset({"game", "survival", "creative"})


def missing_dependencies(
    mods: Iterable[ModFile], have: Mapping[str, str | None]
) -> list[MissingDependency]:
    """Dependencies of `mods` the game would not find among `have` (lowercase modid ->
    version of every enabled mod, the new ones included)."""
    missing: list[MissingDependency] = []
    for mod in mods:
        for modid, required in mod.dependencies:
            if modid in BUILTIN_MODIDS:
                continue
            present = modid in have
            installed = have.get(modid)
            if present and not is_older(installed, required):
                continue
            missing.append(
                MissingDependency(
                    modid=modid,
                    required_version=required or None,
                    installed_version=installed if present else None,
                    required_by=mod.modid or mod.file,
                )
            )
    return missing


def dependents(mods: Iterable[InstalledMod], modid: str) -> list[str]:
    """The enabled mods (other than `modid`) that name `modid` as a dependency."""
    wanted = modid.lower()
    return sorted(
        m.modid
        for m in mods
        if m.enabled and m.modid and m.modid.lower() != wanted and wanted in m.dependencies
    )


def is_older(installed: str | None, required: str) -> bool:
    """Whether `installed` is below the minimum `required`. A version that does not parse
    counts as enough: the game, too, enforces only what it can compare."""
    if not required or installed is None:
        return False
    have, need = version_key(installed), version_key(required)
    return have is not None and need is not None and have < need
