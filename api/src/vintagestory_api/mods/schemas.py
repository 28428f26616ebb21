"""Installed mods and what the mod database says about them: the API view and the cache file."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from vintagestory_api.kit.schemas import CheckOutcome

ModDbStatus = Literal["found", "not_found", "unavailable"]


class ModDbInfo(BaseModel):
    status: ModDbStatus = Field(
        description=(
            "found: known to the mod database; not_found: unknown to it; "
            "unavailable: no lookup has succeeded yet"
        )
    )
    url: str | None = Field(description="The mod's page on the mod database")
    latest_version: str | None
    latest_compatible_version: str | None = Field(
        description="Newest release tagged for the installed game version"
    )
    update_available: bool = Field(
        description="A release for the installed game version is newer than the installed mod"
    )
    downloads: int | None
    fetched_at: datetime | None = Field(description="When this data was last looked up")
    error: str | None = Field(
        description="Why the last lookup failed (the data above is then from fetched_at)"
    )


class InstalledMod(BaseModel):
    modid: str | None
    name: str | None
    version: str | None
    side: str | None = Field(examples=["universal", "server", "client"])
    file: str = Field(description="File or folder name in the Mods directory")
    error: str | None = Field(description="Why the mod's file could not be read")
    moddb: ModDbInfo | None = Field(description="null before the mod was first looked up")


class ModList(BaseModel):
    game_version: str | None = Field(description="Installed game version used for compatibility")
    mods: list[InstalledMod]
    last_check: CheckOutcome | None = Field(description="The last mod database refresh")


class ModDbEntry(BaseModel):
    """What is kept per mod id in `mod-cache.json`."""

    status: ModDbStatus = "unavailable"
    url: str | None = None
    latest_version: str | None = None
    latest_compatible_version: str | None = None
    game_version: str | None = Field(
        default=None, description="Game version latest_compatible_version was computed for"
    )
    downloads: int | None = None
    fetched_at: datetime | None = None
    error: str | None = None


class ModCache(BaseModel):
    mods: dict[str, ModDbEntry] = Field(default_factory=dict)
    last_check: CheckOutcome | None = None
