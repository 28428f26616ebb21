"""Route dependencies of the game server domain."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from .install import InstallService
from .service import GameServerService


async def get_game_server(request: Request) -> GameServerService:
    service: GameServerService = request.app.state.gameserver
    return service


GameServerDep = Annotated[GameServerService, Depends(get_game_server)]


async def get_installer(request: Request) -> InstallService:
    service: InstallService = request.app.state.installer
    return service


InstallerDep = Annotated[InstallService, Depends(get_installer)]
