"""Planning a change before `Mods/` is touched: the chosen releases fetched into staging, their
dependencies followed, and what the game would still miss once they are in place."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from .dependencies import missing_dependencies
from .modinfo import ModFile
from .releases import ModReference
from .schemas import MissingDependency
from .sources import Choice, ModSource, Prepared
from .store import ModStore

# A dependency chain longer than this is a loop or a mistake, not something to download.
MAX_PLANNED_MODS = 20


class Planner:
    def __init__(self, source: ModSource, store: ModStore) -> None:
        self._source = source
        self._store = store

    @contextlib.asynccontextmanager
    async def plan(self) -> AsyncIterator[list[Prepared]]:
        """A plan whose staged archives are deleted at the end, whether they were placed or not."""
        plan: list[Prepared] = []
        try:
            yield plan
        finally:
            for item in plan:
                await asyncio.to_thread(item.staged.unlink, missing_ok=True)

    async def fetch(self, choice: Choice) -> Prepared:
        return await self._source.fetch(choice, self._store.new_staging_file)

    async def add_dependencies(
        self,
        plan: list[Prepared],
        missing: list[MissingDependency],
        game_version: str | None,
    ) -> list[MissingDependency]:
        tried = {p.modid.lower() for p in plan}
        while True:
            todo = [m for m in missing if m.modid.lower() not in tried]
            if not todo or len(plan) >= MAX_PLANNED_MODS:
                return missing
            for dependency in todo:
                tried.add(dependency.modid.lower())
                ref = ModReference(key=dependency.modid)
                choice = await self._source.choose(ref, None, game_version, explicit=False)
                plan.append(await self.fetch(choice))
            missing = await self.missing(plan)

    async def missing(self, plan: list[Prepared]) -> list[MissingDependency]:
        return await self.missing_for([p.mod for p in plan], planned=plan)

    async def missing_for(
        self, mods: list[ModFile], planned: list[Prepared] | None = None
    ) -> list[MissingDependency]:
        """Dependencies of `mods` that the game would not find once they are in place."""
        entries = await asyncio.to_thread(self._store.entries)
        have = {(e.mod.modid or "").lower(): e.mod.version for e in entries if e.enabled}
        for item in planned or []:
            have[item.modid.lower()] = item.mod.version
        return missing_dependencies(mods, have)
