"""A fake Vintage Story dedicated server, for tests of the code that supervises the real one.

Launch it exactly as the real server is launched, only with another program in front:

    [sys.executable, "tests/support/fake_vs_server.py", "--dataPath", "<dir>", "--port", "42420"]

It accepts the real options it needs (`--dataPath` (required here), `--port`, `--ip`,
`--maxclients`, also in `--port=N` form) and ignores every other option. It prints the real
server's console lines (1.20.7 strings), keeps a real SQLite world in WAL mode under
`<dataPath>/Saves/`, mirrors its log to `<dataPath>/Logs/server-main.log`, listens on its TCP
port from the Configuration phase on (before it is ready), reads commands from stdin, and exits
the way the real server does. Importing the module has no side effects; `main()` runs it.

Behaviour comes from environment variables, so the command line stays the real one. Delays marked
"scaled" are multiplied by FAKE_VS_TIME_SCALE.

    FAKE_VS_VERSION           1.21.6  game version printed in the version lines
    FAKE_VS_TIME_SCALE        0.02    factor for every scaled delay (1.0 = realistic seconds)
    FAKE_VS_STARTUP_S         12      startup duration, scaled
    FAKE_VS_STOP_S            3       duration of the shutdown save, scaled (not in slow_stop)
    FAKE_VS_BACKUP_S          5       /genbackup and /db vacuum duration, scaled
    FAKE_VS_MODE              normal  normal | crash_startup | crash_runtime | no_ready |
                                      ignore_sigterm | hang_on_stop | slow_stop |
                                      selfstop_errors | selfstop_disk | missing_runtime
    FAKE_VS_CRASH_AFTER_S     5       crash_runtime: delay after READY, scaled
    FAKE_VS_CRASH_EXIT        0       crash_startup: exit code
    FAKE_VS_SELFSTOP_AFTER_S  5       selfstop_*: delay after READY, scaled
    FAKE_VS_LANG              (unset) en | fr; unset means serverconfig.json's ServerLanguage
    FAKE_VS_LIST_FORMAT       1.20    /list clients lines: 1.20 ("[1] Alice ep") or 1.22
                                      ("Playing [1] Alice ep (12ms) (3s inactive)")
    FAKE_VS_STDIN             lines   lines: each "\\n"-terminated line is one command.
                                      chunks: the real reader; one read of up to 1024 bytes is one
                                      command, and a read that does not end in "\\n" ends the
                                      reader for good
    FAKE_VS_CONTROL           (unset) path of a FIFO for test hooks, created if missing
    FAKE_VS_SCRIPT            (unset) JSON list of timed hooks, t = seconds after READY (not
                                      scaled): [{"t": 1.0, "do": "join", "name": "Alice"}]
    FAKE_VS_WRITE_INTERVAL_S  1.0     while running, commit one "tick" row to the world this
                                      often, scaled; 0 turns it off
    FAKE_VS_OFFTHREAD_S       0.5     /autosavenow: delay before the off-thread save, scaled
    FAKE_VS_READY_MARK        (unset) path of a file that gets the time.monotonic() of each ready
                                      line's write (for benchmarks of ready-line latency)
    FAKE_VS_BACKUP_MODE       normal  /genbackup: normal | hang (starts, never completes) |
                                      crash (writes half the file under its name, then the
                                      runtime aborts, as an I/O error in the real backup task)

Hook lines (FIFO, one per line) and their FAKE_VS_SCRIPT form ({"do": <hook>, ...fields}, or
{"line": "<hook line>"}):

    join <name> [ip[:port]]   fields: name, ip, port
    leave <name>              name
    kick <name> <reason>      name, reason
    timeout <name>            name
    chat <name> <text>        name, text
    error | overload | storm | crash
    selfstop <errors|disk|ram>  kind
    flood <count>             count: prints <count> log lines as fast as the pipe takes them (a
                              busy console: chat, events, overload warnings, exceptions with
                              their stack lines), the last always the chat line
                              "0 | Player<k>: flood line <count> of <count>"

Every write to the world is one row of `fake_writes(seq, kind, at)` plus a chunk row and the
gamedata row, in one transaction, so a test can check that a backup holds every row committed
before a given moment. Kinds: tick, autosave, shutdown.

Details taken from the decompiled 1.20.7 server where the research notes were vaguer:

- A console line is parsed as the real one is: the command is the first space-separated word
  with every "/" removed, the arguments are the rest after the first space. In chunks mode a
  coalesced "/a\\n/b\\n" is therefore the command "a\\nb": its echo spans two lines
  ("Handling Console Command /a" and a raw "b ") and nothing handles it. "/x y\\n/stop\\n" runs
  /x with the arguments "y\\n/stop".
- A SIGTERM or SIGINT while stopping still logs the two lines of the real handler
  ("Server termination event received…", "Server: Exit() called") and changes nothing else.
- Stop() removes every player ("Server shutting down - <reason>") before it logs
  "Server stop requested", whatever the reason.
- /stats compact joins its parts with ";" (no space), including the empty part after the
  players line.

`--port 0` binds a free port; the ready line names it.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import functools
import heapq
import itertools
import json
import math
import os
import queue
import re
import resource
import signal
import socket
import sqlite3
import stat
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, Final, NamedTuple, NoReturn, TextIO

MODES: Final = (
    "normal",
    "crash_startup",
    "crash_runtime",
    "no_ready",
    "ignore_sigterm",
    "hang_on_stop",
    "slow_stop",
    "selfstop_errors",
    "selfstop_disk",
    "missing_runtime",
)
HOOKS: Final = (
    "join",
    "leave",
    "kick",
    "timeout",
    "chat",
    "error",
    "overload",
    "storm",
    "crash",
    "selfstop",
    "flood",
)
DATA_DIRS: Final = (
    "Cache",
    "Saves",
    "BackupSaves",
    "Playerdata",
    "Backups",
    "Logs",
    "Macros",
    "Mods",
)
DEFAULT_PORT: Final = 42420
DEFAULT_MAX_CLIENTS: Final = 16
CONSOLE_NAME: Final = "Console Admin"
EXTERNAL_STOP_REASON: Final = "External close event (CTRL+C/kill/etc)"
COMMAND_STOP_REASON: Final = "Shutdown via server command"
TERMINATION_LINE: Final = "Server termination event received. Shutting down server"
WHITELIST_NOTICE: Final = (
    "Please be aware that as of 1.20, servers default configurations have changed - servers no "
    "longer register themselves to the public servers list and are invite-only (whitelisted) out "
    "of the box. If you desire so, you can enable server advertising with '/serverconfig "
    "advertise on' and disable the whitelist mode with '/serverconfig whitelistmode off'"
)
AUTOSAVE_BUSY: Final = (
    "Call to autosave, but server is already saving. May indicate a disk i/o bottleneck. Reduce "
    "autosave interval or improve file i/o. Will ignore this autosave call."
)
LIST_SYNTAX_ERROR: Final = (
    "Syntax error, requires argument clients|banned|roles|privileges or c|b|r|p"
)
# The real server would write 60 s of these; the hang mode keeps going at 0.
THREAD_WAIT_START: Final = 54
# A floor for repeating timers, so a time scale of 0 cannot turn them into a busy loop.
MIN_REPEAT_S: Final = 0.01
# Types the real console prints; the file log uses the same names without "Server ".
LOG_TYPES: Final = ("Notification", "Event", "Chat", "Warning", "Error", "Fatal", "Debug")
# A flood is written this many lines per write: a reader that lags behind a busy server gets
# its lines in pipe-sized batches anyway, and line-by-line writes would make the fake, not the
# reader, the bottleneck of a benchmark.
FLOOD_CHUNK: Final = 512
FLOOD_MAX: Final = 10_000_000
# The exception the `error` hook logs, and its stack lines.
ERROR_MESSAGE: Final = "Exception: Object reference not set to an instance of an object."
ERROR_FRAMES: Final = (
    "   at Vintagestory.Server.ServerSystemEntitySimulation.OnServerTick(Single dt) "
    "in VintagestoryLib/Server/Systems/World/EntitySimulation.cs:line 212",
    "   at Vintagestory.Server.ServerMain.Process() in "
    "VintagestoryLib/Server/ServerMain.cs:line 1422",
)

STRINGS: Final[dict[str, dict[str, str]]] = {
    "en": {
        "server_type": "Dedicated Server",
        "bind_all": " on Port {port} and all ips",
        "bind_ip": " on Port {port} and ip {ip}",
        "left": "Player {name} left.",
        "removed": "Player {name} got removed. Reason: {reason}",
        "list_header": "List of online Players",
        "banned_header": "List of Banned Users:",
        "backup_start": "Ok, generating backup, this might take a while",
        "backup_done": "Backup complete!",
        "backup_busy": "Can't run backup. A backup is already in progress",
        "vacuum_start": "Vacuum started, this may take some time",
        "vacuum_done": "Vacuum complete!",
        "shutdown_broadcast": "{name} commenced a server shutdown",
        "missing_arg": "Missing argument: {arg}",
        "bad_int": "Invalid argument {arg}: '{value}' is not a number",
        "current": "Current {name} is {value}",
        "set_to": "{name} set to {value}",
    },
    "fr": {
        "server_type": "Serveur dédié",
        "bind_all": " sur le port {port} et toutes les IPs",
        "bind_ip": " sur le port {port} et l'IP {ip}",
        "left": "Le joueur {name} est parti.",
        "removed": "Le Joueur {name} a été supprimé. Raison : {reason}",
        "list_header": "Liste des joueurs en ligne",
        "banned_header": "Liste des utilisateurs bannis :",
        "backup_start": "Ok, création de la sauvegarde, cela peut prendre un moment",
        "backup_done": "Sauvegarde terminée !",
        "backup_busy": "Impossible de lancer la sauvegarde. Une sauvegarde est déjà en cours",
        "vacuum_start": "Compactage lancé, cela peut prendre un moment",
        "vacuum_done": "Compactage terminé !",
        "shutdown_broadcast": "{name} a lancé l'arrêt du serveur",
        "missing_arg": "Argument manquant : {arg}",
        "bad_int": "Argument invalide {arg} : '{value}' n'est pas un nombre",
        "current": "{name} actuel : {value}",
        "set_to": "{name} réglé sur {value}",
    },
}

_LOG_STAMP = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4}) (\d{2}):(\d{2}):(\d{2}) ")


class KnobError(ValueError):
    """An environment knob has a value the fake cannot use."""


# --------------------------------------------------------------------------------------------
# Knobs and hooks


class Hook(NamedTuple):
    """One player or event hook, from the control FIFO or FAKE_VS_SCRIPT."""

    action: str
    name: str = ""
    address: str | None = None
    text: str = ""


class ScriptEvent(NamedTuple):
    at: float
    hook: Hook


class Knobs(NamedTuple):
    version: str = "1.21.6"
    time_scale: float = 0.02
    startup_s: float = 12.0
    stop_s: float = 3.0
    backup_s: float = 5.0
    mode: str = "normal"
    crash_after_s: float = 5.0
    crash_exit: int = 0
    selfstop_after_s: float = 5.0
    lang: str | None = None
    list_format: str = "1.20"
    stdin_mode: str = "lines"
    control: str | None = None
    script: tuple[ScriptEvent, ...] = ()
    write_interval_s: float = 1.0
    offthread_s: float = 0.5
    ready_mark: str | None = None
    backup_mode: str = "normal"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Knobs:
        defaults = cls()
        mode = _env_choice(env, "FAKE_VS_MODE", MODES, defaults.mode)
        lang_raw = env.get("FAKE_VS_LANG", "").strip()
        lang = _env_choice(env, "FAKE_VS_LANG", tuple(STRINGS), "en") if lang_raw else None
        control = env.get("FAKE_VS_CONTROL", "").strip() or None
        crash_exit_raw = env.get("FAKE_VS_CRASH_EXIT", "").strip()
        try:
            crash_exit = int(crash_exit_raw) if crash_exit_raw else defaults.crash_exit
        except ValueError:
            raise KnobError(
                f"FAKE_VS_CRASH_EXIT must be an integer, got {crash_exit_raw!r}"
            ) from None
        return cls(
            version=env.get("FAKE_VS_VERSION", "").strip() or defaults.version,
            time_scale=_env_float(env, "FAKE_VS_TIME_SCALE", defaults.time_scale),
            startup_s=_env_float(env, "FAKE_VS_STARTUP_S", defaults.startup_s),
            stop_s=_env_float(env, "FAKE_VS_STOP_S", defaults.stop_s),
            backup_s=_env_float(env, "FAKE_VS_BACKUP_S", defaults.backup_s),
            mode=mode,
            crash_after_s=_env_float(env, "FAKE_VS_CRASH_AFTER_S", defaults.crash_after_s),
            crash_exit=crash_exit,
            selfstop_after_s=_env_float(env, "FAKE_VS_SELFSTOP_AFTER_S", defaults.selfstop_after_s),
            lang=lang,
            list_format=_env_choice(env, "FAKE_VS_LIST_FORMAT", ("1.20", "1.22"), "1.20"),
            stdin_mode=_env_choice(env, "FAKE_VS_STDIN", ("lines", "chunks"), "lines"),
            control=control,
            script=parse_script(env.get("FAKE_VS_SCRIPT", "")),
            write_interval_s=_env_float(env, "FAKE_VS_WRITE_INTERVAL_S", defaults.write_interval_s),
            offthread_s=_env_float(env, "FAKE_VS_OFFTHREAD_S", defaults.offthread_s),
            ready_mark=env.get("FAKE_VS_READY_MARK", "").strip() or None,
            backup_mode=_env_choice(
                env, "FAKE_VS_BACKUP_MODE", ("normal", "hang", "crash"), defaults.backup_mode
            ),
        )

    def scaled(self, seconds: float) -> float:
        return seconds * self.time_scale


def _env_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise KnobError(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value) or value < 0:
        raise KnobError(f"{name} must be a finite number >= 0, got {raw!r}")
    return value


def _env_choice(env: Mapping[str, str], name: str, choices: Sequence[str], default: str) -> str:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if raw not in choices:
        raise KnobError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def parse_hook_line(line: str) -> Hook | None:
    """Parse one control line; None for anything that is not a usable hook."""
    action, _, rest = line.strip().partition(" ")
    action = action.lower()
    rest = rest.strip()
    if action not in HOOKS:
        return None
    if action in ("join", "leave", "kick", "timeout", "chat"):
        name, _, tail = rest.partition(" ")
        if not name:
            return None
        if action == "join":
            return Hook(action, name, tail.strip() or None)
        if action in ("kick", "chat"):
            return Hook(action, name, text=tail.strip())
        return Hook(action, name)
    if action == "selfstop":
        return Hook(action, text=(rest.split() or ["errors"])[0].lower())
    if action == "flood":
        count = _int_or_none(_first_word(rest))
        if count is None or not 0 < count <= FLOOD_MAX:
            return None
        return Hook(action, text=str(count))
    return Hook(action)


def hook_from_mapping(entry: Mapping[str, Any]) -> Hook | None:
    if isinstance(entry.get("line"), str):
        return parse_hook_line(entry["line"])
    action = entry.get("do")
    if not isinstance(action, str):
        return None
    parts = [action]
    if action == "join":
        parts.append(str(entry.get("name", "")))
        ip, port = entry.get("ip"), entry.get("port")
        if ip is not None or port is not None:
            address = str(ip if ip is not None else "127.0.0.1")
            parts.append(f"{address}:{port}" if port is not None else address)
    elif action in ("kick", "chat"):
        parts.append(str(entry.get("name", "")))
        parts.append(str(entry.get("reason", entry.get("text", ""))))
    elif action in ("leave", "timeout"):
        parts.append(str(entry.get("name", "")))
    elif action == "selfstop":
        parts.append(str(entry.get("kind", entry.get("reason", "errors"))))
    elif action == "flood":
        parts.append(str(entry.get("count", "")))
    return parse_hook_line(" ".join(parts))


def parse_script(raw: str) -> tuple[ScriptEvent, ...]:
    if not raw.strip():
        return ()
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise KnobError(f"FAKE_VS_SCRIPT is not valid JSON: {exc}") from None
    if not isinstance(data, list):
        raise KnobError("FAKE_VS_SCRIPT must be a JSON list")
    events: list[ScriptEvent] = []
    for index, entry in enumerate(data):
        if not isinstance(entry, dict):
            raise KnobError(f"FAKE_VS_SCRIPT[{index}] must be an object")
        at = entry.get("t", 0)
        if isinstance(at, bool) or not isinstance(at, int | float) or at < 0:
            raise KnobError(f"FAKE_VS_SCRIPT[{index}].t must be a number >= 0")
        hook = hook_from_mapping(entry)
        if hook is None:
            raise KnobError(f"FAKE_VS_SCRIPT[{index}] is not a hook: {entry!r}")
        events.append(ScriptEvent(float(at), hook))
    return tuple(events)


# --------------------------------------------------------------------------------------------
# Command line


class Options(NamedTuple):
    data_path: Path
    port: int | None
    ip: str | None
    max_clients: int | None


def parse_options(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(
        prog="fake_vs_server.py", description="Fake Vintage Story server", allow_abbrev=False
    )
    parser.add_argument("--dataPath", required=True)
    parser.add_argument("--port")
    parser.add_argument("--ip")
    parser.add_argument("--maxclients")
    args, _ignored = parser.parse_known_args(argv)
    # Like the real int.TryParse: a port or client count that is not a number is ignored.
    return Options(
        data_path=Path(os.path.abspath(args.dataPath)),
        port=_int_or_none(args.port),
        ip=args.ip or None,
        max_clients=_int_or_none(args.maxclients),
    )


def _int_or_none(raw: str | None) -> int | None:
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------
# Versions


def _version_tuple(version: str) -> tuple[int, int]:
    match = re.match(r"(\d+)\.(\d+)", version)
    return (int(match.group(1)), int(match.group(2))) if match else (1, 21)


def dotnet_version(version: str) -> str:
    """The runtime the real server of that version prints in `C# Framework: .net …`."""
    major_minor = _version_tuple(version)
    if major_minor >= (1, 22):
        return "10.0.0"
    if major_minor >= (1, 21):
        return "8.0.11"
    return "7.0.20"


def required_framework(version: str) -> str:
    major_minor = _version_tuple(version)
    if major_minor >= (1, 22):
        return "10.0.0"
    if major_minor >= (1, 21):
        return "8.0.0"
    return "7.0.0"


def release_label(version: str) -> str:
    return "Unstable" if "-" in version else "Stable"


# --------------------------------------------------------------------------------------------
# Output


def timestamp(moment: dt.datetime) -> str:
    """`d.M.yyyy HH:mm:ss`, local time, day and month not zero-padded."""
    return f"{moment.day}.{moment.month}.{moment.year} {moment:%H:%M:%S}"


class Output:
    """The console (stdout) and the `server-main.log` mirror, behind one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._log: TextIO | None = None
        self._stdout_ok = True

    def open_log(self, path: Path) -> None:
        self._log = path.open("a", encoding="utf-8")

    def close_log(self) -> None:
        with self._lock:
            if self._log is not None:
                self._log.close()
                self._log = None

    def log(self, kind: str, message: str) -> None:
        stamp = timestamp(dt.datetime.now())
        with self._lock:
            self._write_stdout(f"{stamp} [Server {kind}] {message}\n")
            if self._log is not None:
                try:
                    self._log.write(f"{stamp} [{kind}] {message}\n")
                    self._log.flush()
                except OSError:
                    self._log = None

    def raw(self, text: str) -> None:
        """A plain Console.WriteLine: stdout only, no prefix."""
        with self._lock:
            self._write_stdout(text + "\n")

    def many(self, lines: Iterable[tuple[str | None, str]]) -> None:
        """Log lines (type None: a raw continuation line) in writes of FLOOD_CHUNK lines."""
        batch: list[tuple[str | None, str]] = []
        for line in lines:
            batch.append(line)
            if len(batch) == FLOOD_CHUNK:
                self._write_batch(batch)
                batch = []
        if batch:
            self._write_batch(batch)

    def _write_batch(self, batch: Sequence[tuple[str | None, str]]) -> None:
        stamp = timestamp(dt.datetime.now())
        console = "".join(
            f"{stamp} [Server {kind}] {text}\n" if kind else text + "\n" for kind, text in batch
        )
        with self._lock:
            self._write_stdout(console)
            if self._log is not None:
                try:
                    self._log.write(
                        "".join(
                            f"{stamp} [{kind}] {text}\n" if kind else text + "\n"
                            for kind, text in batch
                        )
                    )
                    self._log.flush()
                except OSError:
                    self._log = None

    def _write_stdout(self, text: str) -> None:
        if not self._stdout_ok:
            return
        try:
            sys.stdout.buffer.write(text.encode("utf-8"))
            sys.stdout.buffer.flush()
        except (OSError, ValueError):
            # A reader that went away must not take the server down; the real one keeps going.
            self._stdout_ok = False

    @staticmethod
    def stderr(text: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.buffer.write((text + "\n").encode("utf-8"))
            sys.stderr.buffer.flush()


def flood_lines(count: int) -> Iterator[tuple[str | None, str]]:
    """The lines of a `flood <count>` hook as (type, message); type None is a raw line.

    A cycle of ten: five chat lines, an event, an overload warning and an exception with two
    stack lines (one entry of three lines). The last line is always a chat line naming the
    count, so a reader knows the flood is over.
    """
    for n in range(1, count + 1):
        slot = n % 10
        if n == count or slot < 5:
            yield "Chat", f"0 | Player{n % 7}: flood line {n} of {count}"
        elif slot == 5:
            yield "Event", "Offthread save of 241 map chunks done."
        elif slot == 6:
            yield "Warning", "Server overloaded. A tick took 563ms to complete."
        elif slot == 7:
            yield "Error", ERROR_MESSAGE
        elif slot == 8:
            yield None, ERROR_FRAMES[0]
        else:
            yield None, ERROR_FRAMES[1]


def archive_logs(logs: Path) -> None:
    """Move the previous run's logs to `Logs/Archive/<yyyy-MM-dd_HH_mm_ss>/`, as the server does."""
    old = sorted(p for p in logs.glob("*.log") if p.is_file())
    if not old:
        return
    started = _first_log_stamp(logs / "server-main.log")
    if started is None:
        started = dt.datetime.fromtimestamp(min(p.stat().st_mtime for p in old))
    base = logs / "Archive" / started.strftime("%Y-%m-%d_%H_%M_%S")
    target = base
    for n in itertools.count(2):
        if not target.exists():
            break
        target = base.with_name(f"{base.name}-{n}")
    target.mkdir(parents=True)
    for path in old:
        os.replace(path, target / path.name)


def _first_log_stamp(path: Path) -> dt.datetime | None:
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            first = handle.readline()
    except OSError:
        return None
    match = _LOG_STAMP.match(first)
    if not match:
        return None
    day, month, year, hour, minute, second = (int(g) for g in match.groups())
    try:
        return dt.datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------
# World database

WORLD_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS chunks (position INTEGER PRIMARY KEY, data BLOB);
CREATE TABLE IF NOT EXISTS mapchunks (position INTEGER PRIMARY KEY, data BLOB);
CREATE TABLE IF NOT EXISTS mapregions (position INTEGER PRIMARY KEY, data BLOB);
CREATE TABLE IF NOT EXISTS gamedata (savegameid INTEGER PRIMARY KEY, data BLOB);
CREATE TABLE IF NOT EXISTS playerdata (playerid INTEGER PRIMARY KEY, playeruid TEXT, data BLOB);
CREATE TABLE IF NOT EXISTS fake_writes (
    seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, at REAL NOT NULL
);
"""
# Chunk rows are rewritten in a ring so a long-running fake keeps a small world.
CHUNK_RING: Final = 256


class World:
    """The save game: one SQLite file in WAL mode, open for the life of the server."""

    def __init__(self, path: Path, version: str) -> None:
        self.path = path
        self._version = version
        self.conn = sqlite3.connect(str(path), isolation_level=None, timeout=10)
        try:
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            # VACUUM and big sorts would otherwise write temp files outside the data path.
            self.conn.execute("PRAGMA temp_store=MEMORY")
            self.conn.executescript(WORLD_SCHEMA)
            if self.conn.execute("SELECT 1 FROM gamedata WHERE savegameid = 1").fetchone() is None:
                self.conn.execute(
                    "INSERT INTO gamedata(savegameid, data) VALUES (1, ?)",
                    (self._gamedata(0, "create"),),
                )
        except sqlite3.Error:
            self.conn.close()
            raise

    def _gamedata(self, seq: int, kind: str) -> bytes:
        return json.dumps({"version": self._version, "writes": seq, "last": kind}).encode()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def write(self, kind: str) -> int:
        with self._transaction():
            cursor = self.conn.execute(
                "INSERT INTO fake_writes(kind, at) VALUES (?, ?)", (kind, time.time())
            )
            seq = int(cursor.lastrowid or 0)
            self.conn.execute(
                "INSERT OR REPLACE INTO chunks(position, data) VALUES (?, ?)",
                (seq % CHUNK_RING, f"{kind}:{seq}".encode().ljust(64, b"\0")),
            )
            self.conn.execute(
                "UPDATE gamedata SET data = ? WHERE savegameid = 1", (self._gamedata(seq, kind),)
            )
        return seq

    def checkpoint(self) -> None:
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def backup_to(self, target: Path) -> None:
        """An online-backup copy, visible under its name only once complete."""
        partial = target.with_name(target.name + ".part")
        partial.unlink(missing_ok=True)
        copy = sqlite3.connect(str(partial))
        try:
            self.conn.backup(copy)
            # The copied header says WAL; a backup should be one self-contained file.
            copy.execute("PRAGMA journal_mode=DELETE")
        finally:
            copy.close()
        os.replace(partial, target)

    def vacuum(self) -> None:
        self.conn.execute("VACUUM")

    def close(self) -> None:
        self.conn.close()


# --------------------------------------------------------------------------------------------
# The server


class _Exit(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class _ConsoleLine(NamedTuple):
    text: str


class _ControlLine(NamedTuple):
    hook: Hook


class _SignalEvent(NamedTuple):
    signum: int


_Event = _ConsoleLine | _ControlLine | _SignalEvent


class Player:
    __slots__ = ("client_id", "endpoint", "last_active", "name", "uid")

    def __init__(self, client_id: int, name: str, uid: str, endpoint: str) -> None:
        self.client_id = client_id
        self.name = name
        self.uid = uid
        self.endpoint = endpoint
        self.last_active = time.monotonic()


def format_endpoint(address: str | None, default_port: int) -> str:
    """`[::ffff:1.2.3.4]:5678`, the form .NET prints for an IPv4 client on a dual-stack socket."""
    host, port = "127.0.0.1", str(default_port)
    if address:
        if address.startswith("["):
            inner, _, tail = address[1:].partition("]")
            host, port = inner, tail.lstrip(":") or port
        elif address.count(":") == 1:
            host, _, port = address.partition(":")
            port = port or str(default_port)
        else:
            host = address
    if ":" in host:
        return f"[{host}]:{port}"
    return f"[::ffff:{host}]:{port}"


def player_uid(name: str) -> str:
    """A stable 24-character base64 id per name, shaped like the real player uids."""
    seed = name.encode()
    raw = b"".join(zlib.crc32(seed, salt).to_bytes(4, "big") for salt in range(5))[:18]
    return base64.b64encode(raw).decode()


def _first_word(args: str) -> str | None:
    words = args.split()
    return words[0] if words else None


def _write_mark(path: Path, moment: float) -> None:
    """`moment` as one line, replacing the file at once so a reader never sees half of it."""
    partial = path.with_name(path.name + ".tmp")
    with contextlib.suppress(OSError):
        partial.write_text(f"{moment!r}\n", encoding="utf-8")
        os.replace(partial, path)


def _one_decimal(value: float) -> str:
    """.NET's `#.#` format."""
    return f"{value:.1f}".removesuffix(".0")


STARTING, RUNNING, STOPPING = "starting", "running", "stopping"


class FakeServer:
    def __init__(self, options: Options, knobs: Knobs) -> None:
        self.options = options
        self.knobs = knobs
        self.data = options.data_path
        self.logs = self.data / "Logs"
        self.out = Output()
        self._events: queue.SimpleQueue[_Event] = queue.SimpleQueue()
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._timer_seq = itertools.count()
        self._pending: list[_Event] = []
        self._state = STARTING
        self._started = time.monotonic()
        self._config: dict[str, Any] = {}
        self._lang = knobs.lang or "en"
        self._port = DEFAULT_PORT
        self._ip: str | None = None
        self._max_clients = DEFAULT_MAX_CLIENTS
        self._world: World | None = None
        self._listener: socket.socket | None = None
        self._players: dict[str, Player] = {}
        self._next_client_id = 1
        self._calendar_paused = False
        self._last_disconnect = 0.0
        self._offthread_pending = False
        self._backup_running = False
        self._control_fd: int | None = None

    # ---- text helpers

    def t(self, key: str, **values: object) -> str:
        return STRINGS[self._lang][key].format(**values)

    def note(self, message: str) -> None:
        self.out.log("Notification", message)

    def event(self, message: str) -> None:
        self.out.log("Event", message)

    # ---- run

    def run(self) -> int:
        # Signals first: a SIGTERM at any point after this is the graceful path.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        try:
            self._prepare()
            self._startup()
            self._become_ready()
            self._serve()
        except _Exit as done:
            return done.code
        finally:
            self._release()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # SimpleQueue.put is reentrant, so this hand-off is safe inside a signal handler.
        self._events.put(_SignalEvent(signum))

    def _prepare(self) -> None:
        for name in DATA_DIRS:
            (self.data / name).mkdir(parents=True, exist_ok=True)
        archive_logs(self.logs)
        self.out.open_log(self.logs / "server-main.log")
        if self.knobs.control:
            self._open_control(Path(self.knobs.control))
        threading.Thread(target=self._read_stdin, name="console", daemon=True).start()

    def _release(self) -> None:
        self._close_listener()
        if self._world is not None:
            with contextlib.suppress(sqlite3.Error):
                self._world.close()
            self._world = None
        self.out.close_log()

    # ---- inputs

    def _read_stdin(self) -> None:
        if self.knobs.stdin_mode == "chunks":
            self._read_stdin_chunks()
        else:
            self._read_stdin_lines()

    def _read_stdin_lines(self) -> None:
        pending = b""
        while True:
            try:
                data = os.read(0, 65536)
            except OSError:
                return
            if not data:
                return
            pending += data
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                self._events.put(_ConsoleLine(raw.decode("utf-8", "replace").strip()))

    def _read_stdin_chunks(self) -> None:
        # The real reader: one read is one command, and a read that does not end in a newline
        # makes it stop reading for good.
        while True:
            try:
                data = os.read(0, 1024)
            except OSError:
                return
            if not data or not data.endswith(b"\n"):
                return
            self._events.put(_ConsoleLine(data.decode("utf-8", "replace").strip()))

    def _open_control(self, path: Path) -> None:
        if not path.exists():
            os.mkfifo(path, 0o600)
        if not stat.S_ISFIFO(path.stat().st_mode):
            raise KnobError(f"FAKE_VS_CONTROL {path} exists and is not a FIFO")
        # Read-write, so the FIFO always has a writer: no EOF between hooks, and writers that
        # open it non-blocking find a reader from the first line on.
        self._control_fd = os.open(path, os.O_RDWR)
        threading.Thread(target=self._read_control, name="control", daemon=True).start()

    def _read_control(self) -> None:
        assert self._control_fd is not None
        pending = b""
        while True:
            try:
                data = os.read(self._control_fd, 4096)
            except OSError:
                return
            if not data:
                return
            pending += data
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                hook = parse_hook_line(raw.decode("utf-8", "replace"))
                if hook is not None:
                    self._events.put(_ControlLine(hook))

    # ---- time

    def _schedule(self, delay: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (time.monotonic() + delay, next(self._timer_seq), action))

    def _pause(self, seconds: float) -> None:
        """Wait while starting or stopping; events that arrive meanwhile are handled as busy."""
        deadline = time.monotonic() + seconds
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                event = self._events.get(timeout=None if math.isinf(remaining) else remaining)
            except queue.Empty:
                return
            self._handle_busy(event)

    def _handle_busy(self, event: _Event) -> None:
        if self._state == STARTING:
            if isinstance(event, _SignalEvent):
                self._signal_during_startup()
            else:
                # The real console reader queues main-thread tasks that run after READY.
                self._pending.append(event)
        elif isinstance(event, _SignalEvent):
            # While stopping, the main thread is inside Stop() and nothing else runs. A second
            # SIGTERM changes nothing: its handler still logs both of its lines, but its own
            # Stop() call returns at once.
            self.note(TERMINATION_LINE)
            if self.knobs.mode != "ignore_sigterm":
                self.note("Server: Exit() called")

    # ---- startup

    def _startup(self) -> None:
        ver = self.knobs.version
        steps: list[Callable[[], None]] = [
            lambda: self.note("Server logger started."),
            lambda: self.note(f"Game Version: v{ver} ({release_label(ver)})"),
            lambda: self.note(f"C# Framework: .net {dotnet_version(ver)}"),
            lambda: self.note("Zstd Version: 1.5.5"),
            lambda: self.note("Operating System: Linux"),
            lambda: self.event("Launching server..."),
            lambda: self.event(f"Server v{ver}, network v{ver}, api v{ver}"),
            lambda: self.note("Entering runphase Initialization"),
            lambda: self.event("Loading configuration..."),
            self._load_config,
            lambda: self.note("Entering runphase Configuration"),
            self._listen,
            lambda: self.note("Loading savegame"),
            self._open_world,
            lambda: self.note(f"Savegame {self._save_path()} loaded"),
            lambda: self.note("World size = 1024000 256 1024000"),
            lambda: self.note("Start discovering assets"),
            lambda: self.note("Found 60012 base assets in total"),
            lambda: self.event("Building assets..."),
            lambda: self.note("Entering runphase LoadAssets"),
            self._maybe_crash_startup,
            lambda: self.note("Entering runphase AssetsFinalize"),
            lambda: self.event("Server assets loaded, parsed, registered and finalized"),
            lambda: self.event("Initialising systems..."),
            lambda: self.note("Entering runphase LoadGamePre"),
            lambda: self.note("Server map set"),
            lambda: self.note("Entering runphase GameReady"),
            lambda: self.note("Entering runphase WorldReady"),
            self._maybe_never_ready,
            lambda: self.event("Starting world generators..."),
            lambda: self.event("Begin game ticking..."),
            lambda: self.note("Entering runphase RunGame"),
            lambda: self.note("Starting server threads"),
        ]
        gap = self.knobs.scaled(self.knobs.startup_s) / len(steps)
        for index, step in enumerate(steps):
            if index:
                self._pause(gap)
            step()

    def _signal_during_startup(self) -> None:
        self.note(TERMINATION_LINE)
        if self.knobs.mode == "ignore_sigterm":
            return
        # Stop() runs at once; Launch() sees the Exit run phase between phases and returns.
        self._state = STOPPING
        self.note(
            f"Server stop requested, begin shutdown sequence. Stop reason: {EXTERNAL_STOP_REASON}"
        )
        self.note("Entering runphase Shutdown")
        self.event("Shutting down 0 server threads... ")
        self.event("Killed console thread")
        self.event("All threads gracefully shut down")
        self.event("Doing last tick...")
        self.event("Stopped the server!")
        self._close_listener()
        self.note("Server: Exit() called")
        raise _Exit(0)

    def _load_config(self) -> None:
        path = self.data / "serverconfig.json"
        if path.exists():
            try:
                loaded = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                self.out.log("Error", f"Failed reading serverconfig.json, using defaults: {exc}")
                loaded = {}
            self._config = loaded if isinstance(loaded, dict) else {}
        else:
            self._config = self._default_config()
            self._write_config(self._config)
        opts = self.options
        port = self._config.get("Port")
        self._port = (
            opts.port if opts.port is not None else port if isinstance(port, int) else DEFAULT_PORT
        )
        ip = self._config.get("Ip")
        self._ip = opts.ip or (ip if isinstance(ip, str) and ip else None)
        max_clients = self._config.get("MaxClients")
        self._max_clients = (
            opts.max_clients
            if opts.max_clients is not None
            else max_clients
            if isinstance(max_clients, int)
            else DEFAULT_MAX_CLIENTS
        )
        if self.knobs.lang is None:
            language = self._config.get("ServerLanguage")
            self._lang = language if isinstance(language, str) and language in STRINGS else "en"

    def _default_config(self) -> dict[str, Any]:
        return {
            "FileEditWarning": "PLEASE NOTE: This file is also loaded when you start a single "
            "player world. If you want to run a dedicated server without affecting single "
            "player, we recommend you install the game into a different folder and run the "
            "server from there.",
            "ConfigVersion": "1.9",
            "ServerName": "Vintage Story Server",
            "WelcomeMessage": "Welcome {0}, may you survive well and prosper",
            "Ip": None,
            "Port": DEFAULT_PORT,
            "Upnp": False,
            "AdvertiseServer": False,
            "MaxClients": DEFAULT_MAX_CLIENTS,
            "MaxClientsInQueue": 0,
            "PassTimeWhenEmpty": False,
            "ServerLanguage": "en",
            "WhitelistMode": 0,
            "HostedMode": False,
            "CorruptionProtection": True,
            "DieBelowDiskSpaceMb": 400,
            "DieAboveErrorCount": 100000,
            "DieAboveMemoryUsageMb": 50000,
            "ModPaths": ["Mods", str(self.data / "Mods")],
            "StartupCommands": None,
            "WorldConfig": {
                "Seed": None,
                "SaveFileLocation": str(self.data / "Saves" / "default.vcdbs"),
                "WorldName": "A new world",
                "AllowCreativeMode": True,
                "PlayStyle": "surviveandbuild",
                "WorldType": "standard",
            },
        }

    def _write_config(self, config: Mapping[str, Any]) -> None:
        path = self.data / "serverconfig.json"
        partial = path.with_name(path.name + ".tmp")
        partial.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        os.replace(partial, path)

    def _save_path(self) -> Path:
        default = self.data / "Saves" / "default.vcdbs"
        world = self._config.get("WorldConfig")
        location = world.get("SaveFileLocation") if isinstance(world, dict) else None
        if not isinstance(location, str) or not location:
            return default
        candidate = Path(os.path.abspath(self.data / location))
        # A stale path from another data dir would be followed by the real server; the fake
        # stays inside its data path.
        if candidate.is_relative_to(self.data) and candidate != self.data:
            return candidate
        return default

    def _listen(self) -> None:
        host = self._ip or "127.0.0.1"
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((host, self._port))
            listener.listen(16)
        except OSError as exc:
            listener.close()
            self._crash_startup(
                "System.Net.Sockets.SocketException",
                exc.strerror or str(exc),
                "   at Vintagestory.Server.TcpNetServer.Start() in "
                "VintagestoryLib/Server/Network/TcpNetServer.cs:line 74",
            )
        self._port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), name="tcp", daemon=True).start()

    @staticmethod
    def _accept(listener: socket.socket) -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            connection.close()

    def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()

    def _open_world(self) -> None:
        path = self._save_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._world = World(path, self.knobs.version)
        except sqlite3.Error as exc:
            self.out.log(
                "Fatal",
                f"Failed opening savegame, possibly corrupted. Will exit server now. ({exc})",
            )
            self._close_listener()
            raise _Exit(0) from None

    def _maybe_crash_startup(self) -> None:
        if self.knobs.mode == "crash_startup":
            self._crash_startup(
                "System.InvalidOperationException",
                "boom",
                "   at Vintagestory.Server.ServerMain.Launch() in "
                "VintagestoryLib/Server/ServerMain.cs:line 1098",
            )

    def _crash_startup(self, kind: str, message: str, frame: str) -> NoReturn:
        self._crash_report(kind, message, frame)
        self._close_listener()
        raise _Exit(self.knobs.crash_exit)

    def _maybe_never_ready(self) -> None:
        if self.knobs.mode == "no_ready":
            self._pause(math.inf)

    # ---- ready

    def _become_ready(self) -> None:
        self._state = RUNNING
        bind = (
            self.t("bind_ip", port=self._port, ip=self._ip)
            if self._ip
            else self.t("bind_all", port=self._port)
        )
        written = time.monotonic()
        self.event(f"{self.t('server_type')} now running{bind}!")
        if self.knobs.ready_mark:
            _write_mark(Path(self.knobs.ready_mark), written)
        if not self._advertised_or_open():
            self.note(WHITELIST_NOTICE)
        self._schedule(self.knobs.scaled(2.0), self._calendar_check)
        if self.knobs.write_interval_s > 0:
            self._schedule(self._tick_interval(), self._tick)
        mode = self.knobs.mode
        if mode == "crash_runtime":
            self._schedule(self.knobs.scaled(self.knobs.crash_after_s), self._crash_runtime)
        elif mode in ("selfstop_errors", "selfstop_disk"):
            kind = mode.removeprefix("selfstop_")
            self._schedule(
                self.knobs.scaled(self.knobs.selfstop_after_s), lambda: self._selfstop(kind)
            )
        for scripted in self.knobs.script:
            self._schedule(scripted.at, functools.partial(self._apply_hook, scripted.hook))
        pending, self._pending = self._pending, []
        for event in pending:
            self._handle_running(event)

    def _advertised_or_open(self) -> bool:
        whitelist = self._config.get("WhitelistMode", 0)
        off = whitelist in (2, "2") or (isinstance(whitelist, str) and whitelist.lower() == "off")
        return bool(self._config.get("AdvertiseServer")) or off

    def _tick_interval(self) -> float:
        return max(MIN_REPEAT_S, self.knobs.scaled(self.knobs.write_interval_s))

    def _tick(self) -> None:
        if self._state != RUNNING or self._world is None:
            return
        self._world.write("tick")
        self._schedule(self._tick_interval(), self._tick)

    def _calendar_check(self) -> None:
        if not self._players and not self._calendar_paused:
            self._calendar_paused = True
            self.note("All clients disconnected, pausing game calendar.")

    # ---- main loop

    def _serve(self) -> NoReturn:
        while True:
            now = time.monotonic()
            while self._timers and self._timers[0][0] <= now:
                _, _, action = heapq.heappop(self._timers)
                action()
            timeout = max(0.0, self._timers[0][0] - time.monotonic()) if self._timers else None
            try:
                event = self._events.get(timeout=timeout)
            except queue.Empty:
                continue
            self._handle_running(event)

    def _handle_running(self, event: _Event) -> None:
        if isinstance(event, _SignalEvent):
            self._signal_while_running()
        elif isinstance(event, _ConsoleLine):
            self._console(event.text)
        else:
            self._apply_hook(event.hook)

    def _signal_while_running(self) -> None:
        self.note(TERMINATION_LINE)
        if self.knobs.mode == "ignore_sigterm":
            return
        self._shutdown(EXTERNAL_STOP_REASON, epilogue=[("Notification", "Server: Exit() called")])

    # ---- console

    def _console(self, text: str) -> None:
        if not text:
            return
        if text.startswith("/"):
            # Exactly the real parse: the first space-separated word minus every "/", the rest
            # after the first space. A coalesced "/a\n/b" is therefore the command "a\nb".
            command = text.split(" ")[0].replace("/", "")
            args = text[text.index(" ") + 1 :] if " " in text else ""
            self.note(f"Handling Console Command /{command} {args}")
            handler = self._commands().get(command.lower())
            if handler is not None:
                handler(args)
        elif not text.startswith("."):
            self.note(f"Message to all in group 0: <strong>Admin:</strong>{text}")
            self.out.log("Chat", f"Admin: {text}")

    def _commands(self) -> dict[str, Callable[[str], None]]:
        commands: dict[str, Callable[[str], None]] = {
            "stop": self._cmd_stop,
            "announce": self._cmd_announce,
            "autosavenow": self._cmd_autosavenow,
            "list": self._cmd_list,
            "stats": self._cmd_stats,
            "serverconfig": self._cmd_serverconfig,
            "sc": self._cmd_serverconfig,
            "db": self._cmd_db,
        }
        # HostedMode does not register the backup command at all.
        if not self._config.get("HostedMode"):
            commands["genbackup"] = self._cmd_genbackup
        return commands

    def _cmd_stop(self, args: str) -> None:
        if self.knobs.mode == "ignore_sigterm":
            return
        word = _first_word(args)
        code = 0
        if word is not None:
            try:
                code = int(word)
            except ValueError:
                self.note(self.t("bad_int", arg="exit code", value=word))
                return
        self.note(f"Message to all in group 0: {self.t('shutdown_broadcast', name=CONSOLE_NAME)}")
        self.event(f"{CONSOLE_NAME} shuts down server.")
        self._shutdown(
            COMMAND_STOP_REASON,
            epilogue=[("Notification", "Shut down command executed")],
            code=code,
        )

    def _cmd_announce(self, args: str) -> None:
        if not args.strip():
            self.note(self.t("missing_arg", arg="announcement message"))
            return
        # The real logger runs this line through string.Format and swallows the error a
        # brace causes, so the line is missing; the broadcast still goes out.
        if "{" not in args and "}" not in args:
            self.event(f"{CONSOLE_NAME} announced: {args}.")
        self.note(f'Message to all in group 0: <strong><font color="orange">{args}</font></strong>')
        self.note("")

    def _cmd_autosavenow(self, args: str) -> None:
        if self._offthread_pending:
            self.out.log("Warning", AUTOSAVE_BUSY)
            self.note("Autosave completed")
            return
        self.note("Server ticking has been suspended")
        self.note("Autosaving game world. Notifying mods, then systems of save...")
        self.event("Mods and systems notified, now saving everything...")
        self.event("Will do offthread savegamedata saving...")
        self.event("Saved player world data...")
        self.event("Saved map regions...")
        self.event("Saved map chunks...")
        self.event("World saved! Saved 0 chunks, 0 mapchunks, 7 mapregions.")
        self.note("Server ticking has been resumed")
        self.note("Autosave completed")
        self._offthread_pending = True
        self._schedule(self.knobs.scaled(self.knobs.offthread_s), self._offthread_save)

    def _offthread_save(self) -> None:
        self.event("Offthread save of 197 chunks done.")
        self.note("Offthread save of 0 generating chunks done.")
        self.event("Offthread save of 241 map chunks done.")
        if self._world is not None:
            self._world.write("autosave")
        self._offthread_pending = False
        self.event("Offthread save of savegame done.")

    def _cmd_db(self, args: str) -> None:
        sub, _, rest = args.strip().partition(" ")
        if self._config.get("HostedMode"):
            return
        if sub == "backup":
            self._cmd_genbackup(rest)
        elif sub == "vacuum":
            self.note(self.t("vacuum_start"))
            self._schedule(self.knobs.scaled(self.knobs.backup_s), self._finish_vacuum)

    def _finish_vacuum(self) -> None:
        if self._world is not None:
            self._world.vacuum()
        self.note(self.t("vacuum_done"))

    def _cmd_genbackup(self, args: str) -> None:
        if self._backup_running:
            self.note(self.t("backup_busy"))
            self.note(self.t("backup_start"))
            return
        self._backup_running = True
        target = self.data / "Backups" / self._backup_name(_first_word(args))
        if self.knobs.backup_mode == "hang":
            self.note(self.t("backup_start"))
            return
        if self.knobs.backup_mode == "crash":
            self._schedule(self.knobs.scaled(self.knobs.backup_s), lambda: self._torn(target))
            self.note(self.t("backup_start"))
            return
        self._schedule(self.knobs.scaled(self.knobs.backup_s), lambda: self._finish_backup(target))
        self.note(self.t("backup_start"))

    def _torn(self, target: Path) -> NoReturn:
        # The real backup writes in place: a crash leaves the first pages under the real name.
        with open(self._save_path(), "rb") as world, open(target, "wb") as out:
            out.write(world.read(4096 * 2))
        self._crash_runtime("System.IO.IOException: No space left on device")

    def _backup_name(self, requested: str | None) -> str:
        name = os.path.basename(requested) if requested else ""
        if name in ("", ".", "..") or "\0" in name:
            stem = self._save_path().name.replace(".vcdbs", "") or "world"
            name = f"{stem}-{dt.datetime.now():%Y-%m-%d_%H-%M-%S}.vcdbs"
        return name

    def _finish_backup(self, target: Path) -> None:
        if self._world is None:
            return
        try:
            self._world.backup_to(target)
        except (OSError, sqlite3.Error) as exc:
            # Nothing catches an exception in the real backup task, so the runtime aborts.
            self._crash_runtime(f"{type(exc).__name__}: {exc}")
        self._backup_running = False
        self.note(self.t("backup_done"))

    def _cmd_list(self, args: str) -> None:
        sub = (_first_word(args) or "").lower()
        if not sub:
            self.note(LIST_SYNTAX_ERROR)
        elif sub in ("clients", "c"):
            lines = [self.t("list_header")]
            now = time.monotonic()
            for player in self._players.values():
                if self.knobs.list_format == "1.22":
                    idle = int(now - player.last_active)
                    lines.append(
                        f"Playing [{player.client_id}] {player.name} {player.endpoint} "
                        f"(12ms) ({idle}s inactive)"
                    )
                else:
                    lines.append(f"[{player.client_id}] {player.name} {player.endpoint}")
            self.note("\n".join(lines) + "\n")
        elif sub in ("banned", "b"):
            self.note(self.t("banned_header") + "\n")

    def _cmd_stats(self, args: str) -> None:
        ending = ";" if _first_word(args) == "compact" else "\n"
        self.note(self.stats(ending))

    def stats(self, ending: str) -> str:
        """The /stats text, with the real builder's quirks (the empty segment after the player
        line when no join queue is configured, and the `> 60` carries)."""
        total = int(time.monotonic() - self._started)
        seconds, minutes, hours, days = total, 0, 0, 0
        if seconds > 60:
            minutes, seconds = seconds // 60, seconds % 60
        if minutes > 60:
            hours, minutes = minutes // 60, minutes % 60
        if hours > 24:
            days, hours = hours // 24, hours % 24
        count = len(self._players)
        if count > 0:
            self._last_disconnect = time.monotonic() - self._started
        last_online = max(0, int(total - self._last_disconnect))
        online = f"Players online: {count} / {self._max_clients}"
        if 0 < count < 20:
            online += " (" + ", ".join(p.name for p in self._players.values()) + ")"
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        segments = [
            f"Version: {self.knobs.version}",
            f"Uptime: {days} days, {hours} hours, {minutes} minutes, {seconds} seconds",
            f"Players last online: {last_online} seconds ago",
            online,
            "",
            f"Memory usage Managed/Total: {_one_decimal(rss_mb * 0.4)}Mb / "
            f"{_one_decimal(rss_mb)} Mb",
            "Last 2s Average Tick Time: 1.52 ms",
            "Last 2s Ticks/s: 30",
            "Last 10 ticks (ms): 2, 1, 2, 1, 1, 2, 1, 2, 1, 2",
            f"Loaded chunks: {min(CHUNK_RING, 64 + 16 * count)}",
            f"Loaded entities: {count} ({count} active)",
            "Network TCP: 0 Packets/s or 0 Kb/s",
            "Network UDP: 0 Packets/s or 0 Kb/s",
        ]
        return ending.join(segments)

    def _cmd_serverconfig(self, args: str) -> None:
        sub, _, rest = args.strip().partition(" ")
        if sub.lower() != "maxclients":
            return
        if self.options.max_clients is not None:
            self.note(
                "Current Max Clients is overridden by command line supplied max clients with a "
                f"value of  {self.options.max_clients}"
            )
            return
        word = _first_word(rest)
        label = "Max amount of clients"
        if word is None:
            self.note(self.t("current", name=label, value=self._max_clients))
            return
        try:
            value = int(word)
        except ValueError:
            self.note(self.t("bad_int", arg=label, value=word))
            return
        self._max_clients = value
        self._persist_config_value("MaxClients", value)
        self.note(self.t("set_to", name=label, value=value))

    def _persist_config_value(self, key: str, value: object) -> None:
        path = self.data / "serverconfig.json"
        try:
            current = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            current = dict(self._config)
        if not isinstance(current, dict):
            current = dict(self._config)
        current[key] = value
        self._config[key] = value
        self._write_config(current)

    # ---- hooks

    def _apply_hook(self, hook: Hook) -> None:
        if self._state != RUNNING:
            return
        action = hook.action
        if action == "join":
            self._join(hook.name, hook.address)
        elif action == "leave":
            self._leave(hook.name)
        elif action == "kick":
            self._kick(hook.name, hook.text or "Kicked by Console Admin")
        elif action == "timeout":
            if hook.name in self._players:
                self.note(f"20s ping timeout for {hook.name}. Kicking player...")
                self._kick(hook.name, "Lost connection")
        elif action == "chat":
            self._chat(hook.name, hook.text)
        elif action == "error":
            self.out.log(
                "Error",
                "\n".join((ERROR_MESSAGE, *ERROR_FRAMES)),
            )
        elif action == "overload":
            self.out.log("Warning", "Server overloaded. A tick took 563ms to complete.")
        elif action == "storm":
            self.note("Message to all in group 0: A light temporal storm is imminent")
        elif action == "crash":
            self._crash_runtime()
        elif action == "selfstop":
            self._selfstop(hook.text)
        elif action == "flood":
            self.out.many(flood_lines(int(hook.text)))

    def _join(self, name: str, address: str | None) -> None:
        if name in self._players:
            return
        client_id = self._next_client_id
        self._next_client_id += 1
        endpoint = format_endpoint(address, 51233 + client_id)
        first = not self._players
        self.note(
            f"A Client attempts connecting via TCP on {endpoint}, assigning client id {client_id}"
        )
        uid = player_uid(name)
        self.note(f"Client {client_id} uid {uid} attempting identification. Name: {name}")
        self.note(f"Placing {name} at 510804.27 155 513060.42")
        self._players[name] = Player(client_id, name, uid, endpoint)
        self.event(f"{name} {endpoint} joins.")
        if first and self._calendar_paused:
            self._calendar_paused = False
            self.note("A client reconnected, resuming game calendar.")

    def _leave(self, name: str) -> None:
        player = self._players.pop(name, None)
        if player is None:
            return
        self.event(f"Client {player.client_id} disconnected.")
        self.note(f"Client {player.client_id} disconnected: ")
        self.event(self.t("left", name=name))
        self._after_disconnect()

    def _kick(self, name: str, reason: str) -> None:
        player = self._players.pop(name, None)
        if player is None:
            return
        self._removed(player, reason)
        self._after_disconnect()

    def _removed(self, player: Player, reason: str) -> None:
        self.note(f"Client {player.client_id} disconnected: {reason}")
        self.event(self.t("removed", name=player.name, reason=reason))

    def _after_disconnect(self) -> None:
        self._last_disconnect = time.monotonic() - self._started
        if not self._players and not self._calendar_paused:
            self._calendar_paused = True
            self.note("All clients disconnected, pausing game calendar.")

    def _chat(self, name: str, text: str) -> None:
        player = self._players.get(name)
        if player is not None:
            player.last_active = time.monotonic()
        escaped = text.replace("<", "&lt;").replace(">", "&gt;")
        self.out.log("Chat", f"0 | {name}: {escaped}")

    def _selfstop(self, kind: str) -> None:
        if kind == "disk":
            self.out.log(
                "Fatal",
                "Disk space is below 400 megabytes (312 mb left). Will kill server now...",
            )
            self._shutdown("Out of disk space")
        elif kind == "ram":
            self.out.log(
                "Warning",
                "The server is currently using more than 90% of its maximum allowed memory "
                "(50000 MB).",
            )
            self._shutdown(
                "Server is consuming too much RAM",
                epilogue=[("Error", "Server is consuming more then 50000 MB of RAM")],
            )
        else:
            limit = self._config.get("DieAboveErrorCount", 100000)
            self._shutdown(
                "Too many errors detected. See server-main.log file",
                epilogue=[
                    (
                        "Error",
                        f"More then {limit} errors detected. Shutting down now. Threshold can be "
                        'changed in serverconfig.json "DieAboveErrorCount"',
                    )
                ],
            )

    # ---- stopping

    def _shutdown(
        self,
        reason: str,
        *,
        epilogue: Sequence[tuple[str, str]] = (),
        code: int = 0,
    ) -> NoReturn:
        self._state = STOPPING
        self._timers.clear()
        # Stop() disconnects every client before it logs anything else.
        for player in list(self._players.values()):
            self._removed(player, f"Server shutting down - {reason}")
        self._players.clear()
        self._last_disconnect = time.monotonic() - self._started
        self.note(f"Server stop requested, begin shutdown sequence. Stop reason: {reason}")
        self.note("Server ticking has been suspended")
        self.note("Entering runphase Shutdown")
        self.note("Defragmented listener lists")
        save_s = (
            self.knobs.stop_s
            if self.knobs.mode == "slow_stop"
            else self.knobs.scaled(self.knobs.stop_s)
        )
        saves = (
            "Saved player world data...",
            "Saved map regions...",
            "Saved map chunks...",
            "Saved loaded chunks...",
            "Saved generating chunks...",
            "Saved savegamedata...2",
        )
        gap = save_s / (len(saves) + 1)
        self.event("Mods and systems notified, now saving everything...")
        for line in saves:
            self._pause(gap)
            self.event(line)
        self._pause(gap)
        if self._world is not None:
            self._world.write("shutdown")
            self._world.checkpoint()
        self.event("World saved! Saved 2 chunks, 17 mapchunks, 16 mapregions.")
        self.event("Shutting down 6 server threads... ")
        self.event("Killed console thread")
        if self.knobs.mode == "hang_on_stop":
            self._hang()
        self.event("All threads gracefully shut down")
        self.event("Doing last tick...")
        self.event("Stopped the server!")
        self._close_listener()
        for kind, message in epilogue:
            self.out.log(kind, message)
        raise _Exit(code)

    def _hang(self) -> NoReturn:
        remaining = THREAD_WAIT_START
        self._pause(max(MIN_REPEAT_S, self.knobs.scaled(6.0)))
        while True:
            self.event(f"Waiting for a server thread to shut down ({remaining}/60)...")
            remaining = max(0, remaining - 2)
            self._pause(max(MIN_REPEAT_S, self.knobs.scaled(2.0)))

    # ---- crashing

    def _crash_report(self, kind: str, message: str, frame: str) -> None:
        ver = self.knobs.version
        now = dt.datetime.now()
        report = (
            f"Game Version: v{ver} ({release_label(ver)})\n"
            f"{now:%m/%d/%Y %H:%M:%S}: Critical error occurred\n"
            f"Loaded Mods: game@{ver}, survival@{ver}, creative@{ver}\n"
            f"{kind}: {message}\n{frame}\n"
        )
        crash_file = self.logs / "server-crash.log"
        with contextlib.suppress(OSError), crash_file.open("a", encoding="utf-8") as handle:
            handle.write(report)
        full = report + f'Crash written to file at "{crash_file}"\n'
        self.out.log("Fatal", full)
        self.out.raw(full)

    def _crash_runtime(self, detail: str = "System.InvalidOperationException: boom") -> NoReturn:
        kind, _, message = detail.partition(": ")
        frame = (
            "   at Vintagestory.Server.ServerSystemMonitor.OnSeparateThreadTick() in "
            "VintagestoryLib/Server/Systems/ServerSystemMonitor.cs:line 88"
        )
        self.out.raw("Unhandled Exception occurred")
        self._crash_report(kind, message, frame)
        self.out.stderr(f"Unhandled exception. {kind}: {message}\n{frame}")
        self.out.close_log()
        # An abort must not leave a core file outside the data path.
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        os.abort()


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Run the fake server and return its exit code."""
    options = parse_options(sys.argv[1:] if argv is None else argv)
    try:
        knobs = Knobs.from_env(os.environ if env is None else env)
    except KnobError as exc:
        Output.stderr(f"fake_vs_server: {exc}")
        return 2
    if knobs.mode == "missing_runtime":
        # The .NET host fails before the game writes anything, data path included.
        Output.stderr(
            "You must install or update .NET to run this application.\n\n"
            f"App: {Path(__file__).resolve().with_name('VintagestoryServer.dll')}\n"
            "Architecture: x64\n"
            "Framework: 'Microsoft.NETCore.App', "
            f"version '{required_framework(knobs.version)}' (x64)\n"
            ".NET location: /usr/share/dotnet\n\n"
            "No frameworks were found."
        )
        return 150
    try:
        return FakeServer(options, knobs).run()
    except KnobError as exc:
        Output.stderr(f"fake_vs_server: {exc}")
        return 2


if __name__ == "__main__":
    exit_code = main()
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
        sys.stderr.flush()
    # Daemon reader threads may sit in os.read; skip interpreter teardown, everything is closed.
    # The OS keeps the low byte of an exit code, as it does for the real server's.
    os._exit(exit_code & 0xFF)
