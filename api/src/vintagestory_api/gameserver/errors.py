"""Errors of the game server routes, under one base class."""

from __future__ import annotations

from vintagestory_api.errors import ApiError, Conflict, ValidationFailed


class GameServerError(ApiError):
    """Base of the game server domain's errors."""


class ServerNotRunning(GameServerError, Conflict):
    code = "SERVER_NOT_RUNNING"
    example = "the game server is stopped; start it first"


class LifecycleInProgress(GameServerError, Conflict):
    """The one refusal for every overlap on the game server: a start, stop or restart in
    progress, or another domain's work (a world backup, a restore) holding it."""

    code = "SERVER_BUSY"
    example = "a world backup holds the game server"


class ServerNotInstalled(GameServerError, Conflict):
    code = "SERVER_NOT_INSTALLED"
    example = "no game server is installed in /data/server and VS_SERVER_COMMAND is not set"


class DotnetRuntimeMissing(GameServerError, Conflict):
    code = "DOTNET_RUNTIME_MISSING"
    example = "the game server 1.21.6 needs the .NET 8 runtime (Microsoft.NETCore.App 8.x)"


class InvalidCommand(GameServerError, ValidationFailed):
    code = "INVALID_COMMAND"
    example = "body.command: must start with / (text without it is broadcast as chat; use say)"
