"""Errors of the game server routes, under one base class."""

from __future__ import annotations

from vintagestory_api.errors import (
    ApiError,
    Conflict,
    NotFound,
    ServiceUnavailable,
    ValidationFailed,
)


class GameServerError(ApiError):
    """Base of the game server domain's errors."""


class ServerNotRunning(GameServerError, Conflict):
    code = "SERVER_NOT_RUNNING"
    example = "the game server is stopped; start it first"


class LifecycleInProgress(GameServerError, Conflict):
    """A start, stop or restart is under way, or another domain holds the server (a backup,
    a schedule's restart); the message names the holder."""

    code = "SERVER_BUSY"
    example = "the game server is busy: schedule 'nightly-restart' holds it"

    def __init__(self, message: str, *, holder: str | None = None) -> None:
        super().__init__(message)
        self.holder = holder


class ServerNotInstalled(GameServerError, Conflict):
    code = "SERVER_NOT_INSTALLED"
    example = "no game server is installed in /data/server and VS_SERVER_COMMAND is not set"


class DotnetRuntimeMissing(GameServerError, Conflict):
    code = "DOTNET_RUNTIME_MISSING"
    example = "the game server 1.21.6 needs the .NET 8 runtime (Microsoft.NETCore.App 8.x)"


class InvalidCommand(GameServerError, ValidationFailed):
    code = "INVALID_COMMAND"
    example = "body.command: must start with / (text without it is broadcast as chat; use say)"


# --- installs: answered to POST /server/install and /server/rollback -------------------------


class InstallInProgress(GameServerError, Conflict):
    code = "INSTALL_IN_PROGRESS"
    example = "an install of 1.21.6 is in progress (downloading); wait for it to end"


class ServerRunning(GameServerError, Conflict):
    code = "SERVER_RUNNING"
    example = 'the game server is running; stop it first, or send "restart": true'


class VersionNotFound(GameServerError, NotFound):
    code = "VERSION_NOT_FOUND"
    example = "1.21.99 is in neither the stable nor the unstable version list"


class VersionAlreadyCurrent(GameServerError, Conflict):
    code = "VERSION_ALREADY_CURRENT"
    example = "1.21.6 is already the current version"


class NoPreviousVersion(GameServerError, Conflict):
    code = "NO_PREVIOUS_VERSION"
    example = "there is no previous version to roll back to"


class VersionsUnavailable(GameServerError, ServiceUnavailable):
    code = "VERSIONS_UNAVAILABLE"
    example = "the version list could not be fetched and none is cached: stable: connection failed"


# --- install failures: reported in the install operation (GET /server/install) --------------


class InstallFailure(GameServerError):
    """Why an install operation failed; never an HTTP answer of its own."""

    status_code = 500
    code = "INSTALL_FAILED"
    example = "cannot write versions/1.21.6: no space left on device"


class DownloadFailed(InstallFailure):
    code = "DOWNLOAD_FAILED"
    example = "https://cdn.vintagestory.at/...: HTTP 404"


class DownloadTooLarge(InstallFailure):
    code = "DOWNLOAD_TOO_LARGE"
    example = "the download is larger than 536870912 bytes (VS_INSTALL_MAX_DOWNLOAD_BYTES)"


class ChecksumMismatch(InstallFailure):
    code = "CHECKSUM_MISMATCH"
    example = "the download's md5 is 9e1b...; the versions API publishes 0c28..."


class ArchiveUnsafe(InstallFailure):
    code = "ARCHIVE_UNSAFE"
    example = "the archive entry '../evil' leads out of the target directory (..)"


class ArchiveInvalid(InstallFailure):
    code = "ARCHIVE_INVALID"
    example = "the archive has no VintagestoryServer.dll at its top level"


class UnpackedTooLarge(InstallFailure):
    code = "UNPACKED_TOO_LARGE"
    example = "the archive unpacks to more than 2147483648 bytes (VS_INSTALL_MAX_UNPACKED_BYTES)"


class NewVersionNotReady(InstallFailure):
    code = "NEW_VERSION_NOT_READY"
    example = "1.21.7 was not ready within 300 s; rolled back to 1.21.6, which runs again"
