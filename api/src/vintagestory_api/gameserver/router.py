"""`/server`: the game server's state, lifecycle, installs, events, console and players."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, WebSocket

from vintagestory_api.auth.deps import AdminDep, RoleDep, WsTokensDep, websocket_admin
from vintagestory_api.auth.errors import Forbidden, Unauthorized
from vintagestory_api.auth.tokens import WS_TOKEN_TTL_SECONDS
from vintagestory_api.errors import UpgradeRequired, ValidationFailed, error_responses
from vintagestory_api.kit.envelope import ApiResponse, ok
from vintagestory_api.kit.websocket import refuse

from . import console_socket
from .console import BUFFER_SIZE
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
# WebSocket routes, mounted by the app outside the API router: that router's dependencies read
# an HTTP request, and a WebSocket authenticates itself once accepted, so that the client can
# read the close code of a refusal.
ws_router = APIRouter(prefix="/server", tags=["server"])

CONSOLE_SOCKET = "/console/ws"
CONSOLE_SOCKET_DESCRIPTION = f"""
A WebSocket (`ws://<host>/api/v1alpha1/server{CONSOLE_SOCKET}`, admin only) that sends the
last `last` console entries (default {console_socket.BACKLOG_DEFAULT}, 0 to {BUFFER_SIZE:,}),
then every new entry as it is read, while the game server runs, stops and starts again. It
opens whatever the game server's state.

**Authentication**: the `X-API-Key` header or, since browsers cannot set headers on a
WebSocket, `?token=` from `POST /api/v1alpha1/auth/ws-token` (single-use, valid for
{WS_TOKEN_TTL_SECONDS:g} s).

**Messages** (JSON text, one object each, told apart by `kind`):

- `{{"kind": "entry", "seq", "time", "type", "text", "server_time", "stream"}}`: one console
  entry, with the fields of `GET /server/console`;
- `{{"kind": "backlog_end", "last_seq": S}}`: once, after the last N; every entry after it is
  new (seq > S), and none is sent twice;
- `{{"kind": "dropped", "count": N}}`: this client read too slowly and lost its N oldest
  queued entries (the console never waits for a client); `GET /server/console?after_seq=`
  has them while they are in the buffer.

Messages from the client are ignored.

**Close codes**: 4401 no or invalid key or token, 4403 not the admin role, 4422 invalid query
(`last` out of range, an unknown parameter). Each follows one message carrying the error
envelope, and the close reason repeats its message. On API shutdown the socket is closed with
1012 (uvicorn's "service restart"; 1001 "going away" under a server that ends the API before
its connections): reconnect after a pause.

A plain HTTP request here is answered 426 `UPGRADE_REQUIRED`.
"""

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
    description=f"Live, as they are read: the WebSocket `GET /server{CONSOLE_SOCKET}` (its "
    "operation below describes the messages and close codes: 4401 no or invalid key or token, "
    "4403 not admin, 4422 invalid query).",
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


@router.get(
    CONSOLE_SOCKET,
    summary="The console, live, as a WebSocket (admin only; plain HTTP: 426)",
    description=CONSOLE_SOCKET_DESCRIPTION,
    status_code=101,
    response_model=None,
    responses={
        101: {"description": "Switching Protocols: the WebSocket described above"},
        **error_responses(Forbidden, UpgradeRequired),
    },
)
async def console_socket_over_http(
    # `last` and `token` are declared for the document: the WebSocket route reads them.
    _: AdminDep,
    last: Annotated[
        int, Query(ge=0, le=BUFFER_SIZE, description="How many recent entries come first")
    ] = console_socket.BACKLOG_DEFAULT,
    token: Annotated[
        str | None, Query(description="From POST /auth/ws-token, instead of X-API-Key")
    ] = None,
) -> None:
    # Only a plain HTTP request gets here; a WebSocket handshake goes to the route below.
    raise UpgradeRequired(
        f"/server{CONSOLE_SOCKET} is a WebSocket endpoint; open it with a WebSocket client "
        "(ws:// or wss://), e.g. `websocat` or a browser's WebSocket"
    )


@ws_router.websocket(CONSOLE_SOCKET)
async def console_socket_stream(
    websocket: WebSocket, service: GameServerDep, tokens: WsTokensDep
) -> None:
    # Checked before the accept, so a token is spent before uvicorn logs the path it is in;
    # answered after it, since a close before the accept reaches the client as a bare 403.
    try:
        websocket_admin(websocket, tokens)
        last = console_socket.backlog_size(websocket.query_params)
    except (Unauthorized, Forbidden, ValidationFailed) as error:
        await websocket.accept()
        await refuse(websocket, error)
        return
    await websocket.accept()
    await console_socket.serve(websocket, service, last)
