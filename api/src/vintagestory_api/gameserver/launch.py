"""What to run and whether it can run: the argv, the install check, the .NET runtime check."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from vintagestory_api.kit.version_numbers import version_key

from .errors import DotnetRuntimeMissing
from .process import Launcher
from .versions_dir import VersionsDir

SERVER_DLL = "VintagestoryServer.dll"
# In VS_SERVER_COMMAND: replaced at each launch by the current version's directory.
SERVER_DIR_FIELD = "{server_dir}"
# Exit status of the .NET host when the framework the app needs is missing.
RUNTIME_MISSING_EXIT = 150
RUNTIME_MISSING_TEXT = "You must install or update .NET"
_FRAMEWORK = re.compile(r"Framework: '([^']+)', version '([^']+)'")


@dataclass(frozen=True)
class LaunchConfig:
    server_dir: Path
    data_path: Path
    command: str | None = None
    port: int | None = None

    @property
    def versions(self) -> VersionsDir:
        return VersionsDir(self.server_dir)

    @property
    def launch_dir(self) -> Path:
        """The current version's directory; the server dir itself for a hand-made install."""
        current = self.versions.current()
        return self.versions.path(current) if current is not None else self.server_dir

    @property
    def installed(self) -> bool:
        # A command that does not name the server dir is what runs: nothing else is needed.
        if self.command is not None and SERVER_DIR_FIELD not in self.command:
            return True
        return (self.launch_dir / SERVER_DLL).is_file()

    def not_installed_reason(self) -> str:
        where = f"no game server is installed in {self.server_dir}"
        if self.command is None:
            return f"{where} and VS_SERVER_COMMAND is not set; install one (POST /server/install)"
        return f"{where} for VS_SERVER_COMMAND's {SERVER_DIR_FIELD}; install one first"

    def argv(self) -> list[str]:
        launch_dir = self.launch_dir
        base = (
            [w.replace(SERVER_DIR_FIELD, str(launch_dir)) for w in shlex.split(self.command)]
            if self.command is not None
            else ["dotnet", str(launch_dir / SERVER_DLL)]
        )
        argv = [*base, "--dataPath", str(self.data_path.absolute())]
        if self.port is not None:
            argv += ["--port", str(self.port)]
        return argv

    @property
    def cwd(self) -> Path:
        # The real server finds its assets next to its binary; a command may live anywhere.
        launch_dir = self.launch_dir
        return launch_dir if launch_dir.is_dir() else self.data_path

    def installed_version(self) -> str | None:
        """The `current` link's version, else what `current_version` says (a hand-made install)."""
        versions = self.versions
        return versions.current() or versions.file_version()

    def previous_version(self) -> str | None:
        return self.versions.previous()


def required_runtime(version: str | None) -> int | None:
    """The .NET major version a game version runs on (None: unknown, any will be tried)."""
    key = version_key(version) if version else None
    if key is None:
        return None
    numbers = (*key[0], 0, 0)
    major, minor = numbers[0], numbers[1]
    if (major, minor) >= (1, 22):
        return 10
    if (major, minor) >= (1, 21):
        return 8
    return 7


async def check_runtime(
    config: LaunchConfig, launcher: Launcher, version: str | None = None
) -> None:
    """Refuse a real launch of `version` (default: the installed one) that cannot work; a
    configured command is not checked."""
    if config.command is not None:
        return
    version = version or config.installed_version()
    needed = required_runtime(version)
    wanted = f"the .NET {needed} runtime" if needed else "a .NET runtime"
    game = f"the game server {version}" if version else "the game server"
    runtimes = await launcher.dotnet_runtimes()
    if runtimes is None:
        raise DotnetRuntimeMissing(f"dotnet is not on PATH; {game} needs {wanted}")
    prefix = "Microsoft.NETCore.App " + (f"{needed}." if needed else "")
    if not any(line.startswith(prefix) for line in runtimes):
        raise DotnetRuntimeMissing(
            f"{game} needs {wanted} (Microsoft.NETCore.App {needed or ''}.x), "
            "which dotnet does not list"
        )


def runtime_missing_message(stderr_lines: list[str]) -> str:
    """The .NET host's complaint as one sentence naming the framework to install."""
    for line in stderr_lines:
        if match := _FRAMEWORK.search(line):
            name, version = match.groups()
            return f"the host has no {name} {version}: install that .NET runtime"
    return "the .NET host could not find the runtime this game server needs"
