"""What to run and whether it can run: the argv, the install check, the .NET runtime check."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from vintagestory_api.kit.file_reads import read_file_bytes
from vintagestory_api.kit.version_numbers import version_key

from .errors import DotnetRuntimeMissing
from .process import Launcher

SERVER_DLL = "VintagestoryServer.dll"
VERSION_FILE = "current_version"
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
    def installed(self) -> bool:
        # With a command set, the command is what runs: nothing else has to be installed.
        return self.command is not None or (self.server_dir / SERVER_DLL).is_file()

    def argv(self) -> list[str]:
        base = (
            shlex.split(self.command)
            if self.command is not None
            else ["dotnet", str(self.server_dir / SERVER_DLL)]
        )
        argv = [*base, "--dataPath", str(self.data_path.absolute())]
        if self.port is not None:
            argv += ["--port", str(self.port)]
        return argv

    @property
    def cwd(self) -> Path:
        # The real server finds its assets next to its binary; a command may live anywhere.
        return self.server_dir if self.server_dir.is_dir() else self.data_path

    def installed_version(self) -> str | None:
        try:
            # Bounded and non-blocking: a FIFO in the file's place must not hang a start.
            raw = read_file_bytes(self.server_dir / VERSION_FILE, 255)
        except OSError:
            return None
        text = raw.decode("utf-8", errors="replace").strip()
        return text if version_key(text) is not None else None


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


async def check_runtime(config: LaunchConfig, launcher: Launcher) -> None:
    """Refuse a real launch that cannot work; a configured command is not checked."""
    if config.command is not None:
        return
    version = config.installed_version()
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
