"""Installed mods and what the mod database says about them: the API view and the cache file."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

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
    file: str = Field(description="File or folder name in the Mods (or mods-disabled) directory")
    enabled: bool = Field(
        description="In Mods, loaded by the game; false: in mods-disabled, which it does not read"
    )
    dependencies: dict[str, str] = Field(
        description="From modinfo.json: modid -> lowest version needed (empty: any)",
        examples=[{"game": "1.22.0", "exlib": "0.1.0"}],
    )
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


# --- managing mods ------------------------------------------------------------------------------

Compatibility = Literal["verified", "not_verified", "incompatible", "unknown"]
_COMPATIBILITY = (
    "verified: the release is tagged for the installed game version; not_verified: only for "
    "another version of the same minor (1.22.x); incompatible: for neither; unknown: no game "
    "version to check against, or not in the mod database"
)
ModAction = Literal[
    "installed", "updated", "unchanged", "enabled", "disabled", "removed", "rolled_back"
]
VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9.+_-]{0,63}$"


class ModInstall(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"mod": "carryon"},
                {"mod": 890, "version": "1.12.0"},
                {"mod": "https://mods.vintagestory.at/smex", "with_dependencies": True},
            ]
        },
    )

    mod: (
        Annotated[StrictInt, Field(ge=1, le=2**31 - 1)]
        | Annotated[str, Field(min_length=1, max_length=500)]
    ) = Field(
        description="The modid (`carryon`), the mod database's numeric id (`890`) or the mod's "
        "page URL (`https://mods.vintagestory.at/carryon`, `.../show/mod/4405`)",
        examples=["carryon", 890, "https://mods.vintagestory.at/carryon"],
    )
    version: str | None = Field(
        default=None,
        pattern=VERSION_PATTERN,
        description="A release to install; default: the newest release for the installed game "
        "version (else the newest for its minor version, flagged not_verified)",
        examples=["1.12.1"],
    )
    with_dependencies: bool = Field(
        default=False,
        description="Also install the dependencies modinfo.json names that are missing or too "
        "old, by the same rules",
    )
    force: bool = Field(
        default=False,
        description="Install an asked-for version even when it is tagged for another minor "
        "version of the game",
    )


class MissingDependency(BaseModel):
    modid: str = Field(examples=["exlib"])
    required_version: str | None = Field(description="Lowest version needed; null: any")
    installed_version: str | None = Field(description="null: not installed (or disabled)")
    required_by: str = Field(examples=["smex"])


class ModChange(BaseModel):
    modid: str = Field(examples=["carryon"])
    action: ModAction
    from_version: str | None = Field(
        description="The version before; null: none", examples=["1.12.0"]
    )
    to_version: str | None = Field(description="The version after; null: none", examples=["1.12.1"])
    file: str | None = Field(description="The mod's file afterwards; null when removed")
    compatibility: Compatibility | None = Field(
        default=None, description=f"Of the installed release: {_COMPATIBILITY}"
    )
    reason: str = Field(
        description="What changed, as restart_pending on GET /server shows it",
        examples=["carryon 1.12.0 → 1.12.1"],
    )


class ModFailure(BaseModel):
    modid: str
    code: str = Field(examples=["NO_COMPATIBLE_RELEASE"])
    message: str


class ModOperation(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "changes": [
                        {
                            "modid": "carryon",
                            "action": "updated",
                            "from_version": "1.12.0",
                            "to_version": "1.12.1",
                            "file": "CarryOn-1.21.0_v1.12.1.zip",
                            "compatibility": "verified",
                            "reason": "carryon 1.12.0 → 1.12.1",
                        }
                    ],
                    "missing_dependencies": [],
                    "failed": [],
                    "restart_pending": True,
                }
            ]
        }
    )

    changes: list[ModChange]
    missing_dependencies: list[MissingDependency] = Field(
        description="Dependencies of the changed mods that are not installed, or too old"
    )
    failed: list[ModFailure] = Field(
        description="Mods a bulk update could not update (the others were updated)"
    )
    restart_pending: bool = Field(
        description="The game server runs and loads the change only when it restarts"
    )


class KeptVersion(BaseModel):
    version: str | None
    file: str
    kept_at: datetime


class ModDetail(BaseModel):
    mod: InstalledMod
    previous: list[KeptVersion] = Field(
        description="Versions kept for rollback (in mods-previous), newest first"
    )
    required_by: list[str] = Field(description="Enabled mods that depend on this one")


class ModCompatibility(BaseModel):
    modid: str
    installed_version: str | None
    compatibility: Compatibility = Field(description=_COMPATIBILITY)
    compatible_release: str | None = Field(
        description="The release to update to for that game version, when there is one"
    )
    reason: str = Field(examples=["carryon 1.12.1 is made for 1.21.0, 1.21.1, 1.21.2, 1.21.3"])


class ModCompatibilityList(BaseModel):
    game_version: str
    mods: list[ModCompatibility] = Field(
        description="Every enabled mod not verified for that game version"
    )
