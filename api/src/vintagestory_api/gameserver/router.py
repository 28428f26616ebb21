"""`/server`: the game server's state, lifecycle, installs, events, console and players."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from vintagestory_api.auth.deps import AdminDep, RoleDep
from vintagestory_api.auth.errors import Forbidden
from vintagestory_api.errors import error_responses
from vintagestory_api.kit.envelope import ApiResponse, ok

from .deps import GameServerDep, InstallerDep
from .errors import (
    DotnetRuntimeMissing,
    InstallInProgress,
    InvalidCommand,
    LifecycleInProgress,
    NoPreviousVersion,
    ServerNotInstalled,
    ServerNotRunning,
    ServerRunning,
    VersionAlreadyCurrent,
    VersionNotFound,
    VersionsUnavailable,
)
from .schemas import (
    CommandReply,
    CommandRequest,
    ConsoleCommand,
    ConsoleLines,
    InstallOperation,
    InstallRequest,
    LifecycleEvents,
    PlayerList,
    RollbackRequest,
    ServerStatus,
)
from .service import GameServerService

router = APIRouter(prefix="/server", tags=["server"])

_LIFECYCLE_ERRORS = error_responses(
    Forbidden, LifecycleInProgress, ServerNotInstalled, DotnetRuntimeMissing
)
_ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {"model": ApiResponse[ServerStatus], "description": "Begun"}
}


def _answer(
    service: GameServerService, begun: bool, response: Response
) -> ApiResponse[ServerStatus]:
    # 202: the action runs on (a start until the ready line, a stop until the exit);
    # 200: there was nothing to do.
    response.status_code = 202 if begun else 200
    return ok(service.status())


@router.get("", summary="The game server's state, process, players and last exit")
async def status(service: GameServerDep, _: RoleDep) -> ApiResponse[ServerStatus]:
    return ok(service.status())


@router.post(
    "/start",
    summary="Start the game server (202; 200 when it is already starting or running)",
    responses={**_ACCEPTED, **_LIFECYCLE_ERRORS},
)
async def start(
    service: GameServerDep, role: AdminDep, response: Response
) -> ApiResponse[ServerStatus]:
    return _answer(service, await service.start(str(role)), response)


@router.post(
    "/stop",
    summary="Stop the game server gracefully (202; 200 when it is not running)",
    description="`/stop` on its console when running, SIGTERM while starting; SIGTERM after "
    "server_stop_timeout_seconds, SIGKILL after server_kill_timeout_seconds more.",
    responses={**_ACCEPTED, **_LIFECYCLE_ERRORS},
)
async def stop(
    service: GameServerDep, role: AdminDep, response: Response
) -> ApiResponse[ServerStatus]:
    return _answer(service, await service.stop(str(role)), response)


@router.post(
    "/restart",
    summary="Stop the game server gracefully, then start it (202)",
    responses={**_ACCEPTED, **_LIFECYCLE_ERRORS},
)
async def restart(
    service: GameServerDep, role: AdminDep, response: Response
) -> ApiResponse[ServerStatus]:
    return _answer(service, await service.restart(str(role)), response)


@router.get("/events", summary="Lifecycle events, newest first")
async def events(
    service: GameServerDep,
    _: RoleDep,
    limit: Annotated[int, Query(ge=1, le=500, description="How many, newest first")] = 50,
) -> ApiResponse[LifecycleEvents]:
    return ok(service.events(limit))


@router.get(
    "/console",
    summary="Console entries, oldest first (admin only)",
    responses=error_responses(Forbidden),
)
async def console(
    service: GameServerDep,
    _: AdminDep,
    limit: Annotated[int, Query(ge=1, le=10_000, description="At most this many")] = 100,
    after_seq: Annotated[
        int | None,
        Query(ge=0, description="Only entries after this seq (the first ones); default the newest"),
    ] = None,
) -> ApiResponse[ConsoleLines]:
    return ok(service.console(limit=limit, after_seq=after_seq))


@router.post(
    "/console/command",
    summary="Send a console command, or say something as Admin (admin only)",
    description="`command` must start with `/` (text without it would be broadcast as chat); "
    "`say` broadcasts on purpose. At most 1 KB, one line, no control characters. Answers the "
    "echo and the reply lines that followed within a short window.",
    responses=error_responses(Forbidden, ServerNotRunning, InvalidCommand),
)
async def command(
    service: GameServerDep, _: AdminDep, body: CommandRequest
) -> ApiResponse[CommandReply]:
    if isinstance(body, ConsoleCommand):
        return ok(await service.send_command(body.command))
    return ok(await service.say(body.say))


@router.get("/players", summary="Who is online, since when")
async def players(service: GameServerDep, _: RoleDep) -> ApiResponse[PlayerList]:
    return ok(service.players())


_SWITCH_ERRORS = error_responses(Forbidden, InstallInProgress, ServerRunning, DotnetRuntimeMissing)
_BEGUN: dict[int | str, dict[str, Any]] = {
    202: {
        "model": ApiResponse[InstallOperation],
        "description": "Begun; follow GET /server/install",
    }
}


@router.post(
    "/install",
    status_code=202,
    summary="Install a game server version from the official downloads (admin only)",
    description="Downloads the version's Linux server from the URL in the versions data "
    "(its host replaced by VS_CDN_URL when set), checks its md5, unpacks it safely next to the "
    "installed versions and makes it current, keeping the one before for POST /server/rollback. "
    'A running server is refused (SERVER_RUNNING) unless `"restart": true`: it is then stopped '
    "gracefully, switched and started, and put back on the old version if the new one does not "
    "become ready. One install or rollback at a time. The enabled mods the new version would "
    'not verifiably run are listed in incompatible_mods first; `"dry_run": true` only lists '
    "them (200, nothing downloaded or switched).",
    responses={
        **_BEGUN,
        200: {
            "model": ApiResponse[InstallOperation],
            "description": "dry_run: what it would do (incompatible_mods); nothing changed",
        },
        **_SWITCH_ERRORS,
        **error_responses(VersionNotFound, VersionAlreadyCurrent, VersionsUnavailable),
    },
)
async def install(
    installer: InstallerDep, role: AdminDep, body: InstallRequest, response: Response
) -> ApiResponse[InstallOperation]:
    op = await installer.install(body, str(role))
    if op.dry_run:
        response.status_code = 200
    return ok(op)


@router.get(
    "/install",
    summary="The install or rollback under way, or the last one (null: none since the API started)",
)
async def install_status(
    installer: InstallerDep, _: RoleDep
) -> ApiResponse[InstallOperation | None]:
    return ok(installer.operation())


@router.post(
    "/rollback",
    status_code=202,
    summary="Make the previous version current again (admin only)",
    description="The versions swap places, so a second rollback goes forward again. As for an "
    'install, a running server needs `"restart": true`.',
    responses={**_BEGUN, **_SWITCH_ERRORS, **error_responses(NoPreviousVersion)},
)
async def rollback(
    installer: InstallerDep, role: AdminDep, body: RollbackRequest | None = None
) -> ApiResponse[InstallOperation]:
    return ok(await installer.rollback(body or RollbackRequest(), str(role)))
