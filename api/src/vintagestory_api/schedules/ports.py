"""What the backup and install steps need from domains that live beside this one, as small
Protocols; `app.py` passes the real services (or None where the build has none yet)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol


class BackupTaker(Protocol):
    """Takes a world backup and answers once it is verified; raises when it fails.

    It takes the game server's lifecycle hold itself (a start or stop meanwhile is 409
    SERVER_BUSY), so the backup step does not."""

    def take(self, trigger: str) -> Awaitable[object]: ...


class Installer(Protocol):
    """Installs a game version ("stable", "unstable" or a number) and answers once it is
    installed; raises when it fails. Takes the game server's lifecycle hold itself."""

    def install(self, version: str) -> Awaitable[object]: ...


class ModUpdater(Protocol):
    """Applies every compatible mod update and answers once the files are in place; raises
    when it could not run (another mod change under way)."""

    def update_all(self) -> Awaitable[object]: ...
