"""Errors of the mod management routes, under one base class."""

from __future__ import annotations

from vintagestory_api.errors import ApiError, Conflict, NotFound, ValidationFailed


class ModError(ApiError):
    """Base of the mods domain's errors."""


class InvalidModReference(ModError, ValidationFailed):
    code = "INVALID_MOD_REFERENCE"
    example = (
        "body.mod: 'https://example.com/x' is not a mod id, a numeric mod database id or a "
        "mod page URL on mods.vintagestory.at"
    )


class ModNotInDatabase(ModError, NotFound):
    code = "MOD_NOT_IN_DATABASE"
    example = "the mod database knows no mod 'carryonn'"


class ReleaseNotFound(ModError, NotFound):
    code = "RELEASE_NOT_FOUND"
    example = "carryon has no release 1.99.0; releases: 1.12.1, 1.12.0, 1.11.0"


class ModNotInstalled(ModError, NotFound):
    code = "MOD_NOT_INSTALLED"
    example = "no mod with modid 'carryon' is installed"


class NoCompatibleRelease(ModError, Conflict):
    code = "NO_COMPATIBLE_RELEASE"
    example = (
        "carryon has no release for game 1.22.3 (nor for 1.22.x); releases: 1.12.1 (1.21.0, "
        "1.21.1, 1.21.2, 1.21.3), 1.12.0 (1.21.0, 1.21.1, 1.21.2, 1.21.3)"
    )


class ModOperationInProgress(ModError, Conflict):
    code = "MOD_OPERATION_IN_PROGRESS"
    example = "another mod operation (install carryon) is in progress; try again when it is done"


class ModRequiredBy(ModError, Conflict):
    code = "MOD_REQUIRED_BY"
    example = "exlib is required by smex; pass force=true to remove it anyway"


class NoPreviousVersion(ModError, Conflict):
    code = "NO_PREVIOUS_VERSION"
    example = "no previous version of carryon is kept to roll back to"


class ModArchiveInvalid(ModError, ValidationFailed):
    """Not a mod archive the game could load: not a zip, damaged, no readable modinfo.json."""

    code = "MOD_ARCHIVE_INVALID"
    example = "carryon 1.12.1: not a zip archive (File is not a zip file)"


class ModArchiveMismatch(ModError, ValidationFailed):
    """The archive is a mod, but not the one the mod database said it is."""

    code = "MOD_ARCHIVE_MISMATCH"
    example = "carryon 1.12.1: the archive's modinfo.json names modid 'otherthing', not 'carryon'"


class ModArchiveUnsafe(ModError, ValidationFailed):
    """A zip bomb or an archive with paths leaving its folder."""

    code = "MOD_ARCHIVE_UNSAFE"
    example = "upload.zip: would unpack to 1073741825 bytes, more than the 1073741824 byte limit"


class ModDownloadFailed(ModError):
    status_code = 502
    code = "MOD_DOWNLOAD_FAILED"
    example = "carryon 1.12.1: download failed: connection closed mid-reply"


class ModDatabaseUnavailable(ModError):
    status_code = 502
    code = "MOD_DATABASE_UNAVAILABLE"
    example = "the mod database could not be asked: connection failed"


class ModWriteFailed(ModError):
    status_code = 500
    code = "MOD_WRITE_FAILED"
    example = "could not write to the Mods folder: [Errno 28] No space left on device"
