"""`/mods`: the installed mods, their updates, and changing them (admin)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Path, Query, UploadFile

from vintagestory_api.auth.deps import AdminDep
from vintagestory_api.auth.errors import Forbidden
from vintagestory_api.errors import ApiError, ServiceUnavailable, error_responses
from vintagestory_api.gameserver.errors import LifecycleInProgress
from vintagestory_api.kit.envelope import ApiResponse, ok

from .deps import ModManagerDep, ModsDep
from .errors import (
    InvalidModReference,
    ModArchiveInvalid,
    ModArchiveMismatch,
    ModArchiveUnsafe,
    ModDatabaseUnavailable,
    ModDownloadFailed,
    ModNotInDatabase,
    ModNotInstalled,
    ModOperationInProgress,
    ModRequiredBy,
    ModWriteFailed,
    NoCompatibleRelease,
    NoPreviousVersion,
    ReleaseNotFound,
)
from .schemas import (
    VERSION_PATTERN,
    ModCompatibilityList,
    ModDetail,
    ModInstall,
    ModList,
    ModOperation,
)

router = APIRouter(prefix="/mods", tags=["mods"], responses=error_responses(ServiceUnavailable))

MODID_PATTERN = r"^[A-Za-z0-9_.-]{1,100}$"
ModId = Annotated[
    str,
    Path(
        pattern=MODID_PATTERN,
        description="The modid from the mod's modinfo.json",
        examples=["carryon"],
    ),
]
Force = Annotated[
    bool,
    Query(description="Also when enabled mods depend on it (they will fail to load)"),
]

# Every change: one at a time, and the files move under the game server's lifecycle hold.
_CHANGE = (Forbidden, ModOperationInProgress, LifecycleInProgress, ModWriteFailed)
# Everything a download from the mod database can run into.
_FROM_DATABASE = (
    ModNotInDatabase,
    ReleaseNotFound,
    NoCompatibleRelease,
    ModDatabaseUnavailable,
    ModDownloadFailed,
    ModArchiveInvalid,
    ModArchiveMismatch,
    ModArchiveUnsafe,
)
# What the changing routes answer; the schema is the same for all of them.
Operation = ApiResponse[ModOperation]


def _changing(*errors: type[ApiError]) -> dict[int | str, dict[str, Any]]:
    """The error responses of a route that changes mods: those of every change, then `errors`."""
    return error_responses(*_CHANGE, *errors)


@router.get(
    "",
    summary="Installed mods, each with what the mod database last said about it",
)
async def list_mods(mods: ModsDep) -> ApiResponse[ModList]:
    return ok(await mods.mod_list())


@router.post(
    "",
    summary="Install a mod from the mod database (admin)",
    description="Resolves `mod` (modid, numeric id or page URL), picks the newest release for "
    "the installed game version (else for its minor version, flagged `not_verified`), downloads "
    "and checks it, and puts it in Mods in place of any other version of it. Missing "
    "dependencies are reported, or installed too with `with_dependencies`.",
    responses=_changing(InvalidModReference, *_FROM_DATABASE),
)
async def install_mod(manager: ModManagerDep, _: AdminDep, body: ModInstall) -> Operation:
    return ok(await manager.install(body))


@router.post(
    "/upload",
    summary="Install a mod archive that is not in the mod database (admin)",
    description="multipart/form-data with the zip as `file`; the same archive checks as a "
    "download. The modid and version come from its modinfo.json.",
    responses=_changing(ModArchiveInvalid, ModArchiveUnsafe),
)
async def upload_mod(
    manager: ModManagerDep,
    _: AdminDep,
    file: Annotated[UploadFile, File(description="The mod's .zip archive")],
) -> Operation:
    return ok(await manager.upload(file.file, file.filename or "upload.zip"))


@router.post(
    "/update",
    summary="Apply every update the last mod check found for the installed game version (admin)",
    description="Mods whose update fails are listed in `failed`; the others are updated.",
    responses=_changing(),
)
async def update_all_mods(manager: ModManagerDep, _: AdminDep) -> Operation:
    return ok(await manager.update_all())


@router.get(
    "/compatibility",
    summary="The enabled mods a game version would not verifiably run",
    description="Looks every enabled mod up in the mod database: what is not tagged for "
    "`game_version`, and the release to update to when there is one.",
)
async def compatibility(
    manager: ModManagerDep,
    game_version: Annotated[
        str, Query(pattern=VERSION_PATTERN, description="A game version", examples=["1.22.0"])
    ],
) -> ApiResponse[ModCompatibilityList]:
    return ok(await manager.compatibility_report(game_version))


@router.get(
    "/{modid}",
    summary="One installed mod, its kept previous versions and the mods that need it",
    responses=error_responses(ModNotInstalled),
)
async def get_mod(manager: ModManagerDep, modid: ModId) -> ApiResponse[ModDetail]:
    return ok(await manager.detail(modid))


@router.post(
    "/{modid}/update",
    summary="Update one mod to the newest release for the installed game version (admin)",
    responses=_changing(ModNotInstalled, *_FROM_DATABASE),
)
async def update_mod(manager: ModManagerDep, _: AdminDep, modid: ModId) -> Operation:
    return ok(await manager.update(modid))


@router.post(
    "/{modid}/enable",
    summary="Move a disabled mod back into Mods (admin)",
    responses=_changing(ModNotInstalled),
)
async def enable_mod(manager: ModManagerDep, _: AdminDep, modid: ModId) -> Operation:
    return ok(await manager.enable(modid))


@router.post(
    "/{modid}/disable",
    summary="Move a mod to mods-disabled, which the game does not read (admin)",
    responses=_changing(ModNotInstalled, ModRequiredBy),
)
async def disable_mod(
    manager: ModManagerDep, _: AdminDep, modid: ModId, force: Force = False
) -> Operation:
    return ok(await manager.disable(modid, force=force))


@router.delete(
    "/{modid}",
    summary="Remove a mod; the file is kept in mods-previous for a rollback (admin)",
    responses=_changing(ModNotInstalled, ModRequiredBy),
)
async def remove_mod(
    manager: ModManagerDep, _: AdminDep, modid: ModId, force: Force = False
) -> Operation:
    return ok(await manager.remove(modid, force=force))


@router.post(
    "/{modid}/rollback",
    summary="Put back the version a change replaced or removed, byte for byte (admin)",
    description="Each rollback goes one kept version further back; the version it replaces is "
    "dropped (install it again to return to it).",
    responses=_changing(NoPreviousVersion),
)
async def rollback_mod(manager: ModManagerDep, _: AdminDep, modid: ModId) -> Operation:
    return ok(await manager.rollback(modid))
