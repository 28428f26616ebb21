"""Route dependencies of the game server domain."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from .install import InstallService
from .service import GameServerService


# An HTTPConnection, not a Request: the console WebSocket takes the service the same way.
async def get_game_server(connection: HTTPConnection) -> GameServerService:
    service: GameServerService = connection.app.state.gameserver
    return service


GameServerDep = Annotated[GameServerService, Depends(get_game_server)]


async def get_installer(connection: HTTPConnection) -> InstallService:
    service: InstallService = connection.app.state.installer
    return service


InstallerDep = Annotated[InstallService, Depends(get_installer)]
