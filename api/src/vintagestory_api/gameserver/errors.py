"""Errors of the game server routes, under one base class."""

from __future__ import annotations

from vintagestory_api.errors import ApiError, Conflict, ValidationFailed


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
