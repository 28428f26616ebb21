"""The fake Vintage Story server, run as a real subprocess: what it prints, how it stops, what it
leaves in its data path. Every wait is on an output line or a polled condition with a deadline."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import fake_vs_server
from tests.support.fake_vs_client import (
    LINE_PATTERN,
    FakeServerControl,
    FakeServerProcess,
    fake_server_command,
    fake_server_env,
    wait_for,
    world_writes,
)

SCALE = 0.01
TS = r"\d{1,2}\.\d{1,2}\.\d{4} \d{2}:\d{2}:\d{2}"
N = r"\[Server Notification\] "
E = r"\[Server Event\] "
READY_ALL = r"\[Server Event\] Dedicated Server now running on Port (\d+) and all ips!$"
CALENDAR_PAUSED = N + r"All clients disconnected, pausing game calendar\.$"
ABORT = signal.SIGABRT.value

Spawn = Callable[..., FakeServerProcess]


@pytest.fixture
def data_path(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    return tmp_path / "control.fifo"


@pytest.fixture
def spawn(data_path: Path) -> Iterator[Spawn]:
    started: list[FakeServerProcess] = []

    def start(
        *,
        data: Path | None = None,
        args: tuple[str, ...] = (),
        port: int = 0,
        cwd: Path | None = None,
        **knobs: Any,
    ) -> FakeServerProcess:
        knobs.setdefault("time_scale", SCALE)
        # 0.03 s of startup: enough for the lines to come in order, short for a whole module.
        knobs.setdefault("startup_s", 3)
        server = FakeServerProcess(
            data or data_path, port=port, env=fake_server_env(**knobs), args=args, cwd=cwd
        )
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def ready_and_idle(server: FakeServerProcess) -> int:
    """Wait for READY and the calendar line after it, so later output is only replies."""
    port = int(server.expect(READY_ALL).group(1))
    server.expect(CALENDAR_PAUSED)
    return port


def reply(server: FakeServerProcess, echo: str, count: int, timeout: float = 10.0) -> list[str]:
    """The `count` lines that follow the echo of a command (one reply block)."""
    server.expect(N + "Handling Console Command " + echo)
    start = server.cursor
    wait_for(lambda: server.mark() >= start + count, timeout, f"{count} lines after {echo!r}")
    return server.since(start)[:count]


def body(lines: list[str]) -> list[str]:
    """Lines with the timestamp cut off, raw continuation lines as they are."""
    return [re.sub(rf"^{TS} ", "", line) for line in lines]


def world(data_path: Path) -> Path:
    return data_path / "Saves" / "default.vcdbs"


def wal(db: Path) -> Path:
    return db.with_name(db.name + "-wal")


def integrity(db: Path) -> str:
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = connection.execute("PRAGMA integrity_check").fetchone()
    finally:
        connection.close()
    return str(row[0])


def assert_checkpointed(db: Path) -> None:
    """The state a clean stop leaves: no WAL content, last write the shutdown save."""
    assert not wal(db).exists() or wal(db).stat().st_size == 0
    assert world_writes(db)[-1][1] == "shutdown"
    assert integrity(db) == "ok"


STOP_SEQUENCE = [
    N + r"Server ticking has been suspended$",
    N + r"Entering runphase Shutdown$",
    N + r"Defragmented listener lists$",
    E + r"Mods and systems notified, now saving everything\.\.\.$",
    E + r"Saved player world data\.\.\.$",
    E + r"Saved map regions\.\.\.$",
    E + r"Saved map chunks\.\.\.$",
    E + r"Saved loaded chunks\.\.\.$",
    E + r"Saved generating chunks\.\.\.$",
    E + r"Saved savegamedata\.\.\.2$",
    E + r"World saved! Saved \d+ chunks, \d+ mapchunks, \d+ mapregions\.$",
    E + r"Shutting down \d+ server threads\.\.\. $",
    E + r"Killed console thread$",
    E + r"All threads gracefully shut down$",
    E + r"Doing last tick\.\.\.$",
    E + r"Stopped the server!$",
]


def expect_stop(server: FakeServerProcess, reason: str) -> None:
    server.expect(
        N + r"Server stop requested, begin shutdown sequence\. Stop reason: " + re.escape(reason)
    )
    for pattern in STOP_SEQUENCE:
        server.expect(pattern)


# --------------------------------------------------------------------------------------------
# Startup


def test_startup_lines_come_in_order_then_ready(spawn: Spawn, data_path: Path) -> None:
    server = spawn()
    db = world(data_path)
    for pattern in [
        N + r"Server logger started\.$",
        N + r"Game Version: v1\.21\.6 \(Stable\)$",
        N + r"C# Framework: \.net 8\.0\.11$",
        E + r"Launching server\.\.\.$",
        E + r"Server v1\.21\.6, network v1\.21\.6, api v1\.21\.6$",
        N + r"Entering runphase Initialization$",
        E + r"Loading configuration\.\.\.$",
        N + r"Entering runphase Configuration$",
        N + r"Loading savegame$",
        N + rf"Savegame {re.escape(str(db))} loaded$",
        N + r"Entering runphase LoadAssets$",
        N + r"Entering runphase AssetsFinalize$",
        N + r"Entering runphase LoadGamePre$",
        N + r"Server map set$",
        N + r"Entering runphase GameReady$",
        N + r"Entering runphase WorldReady$",
        E + r"Begin game ticking\.\.\.$",
        N + r"Entering runphase RunGame$",
        N + r"Starting server threads$",
    ]:
        server.expect(pattern)
    port = int(server.expect(READY_ALL).group(1))
    assert port > 0
    server.expect(N + r"Please be aware that as of 1\.20, servers default configurations")
    server.expect(CALENDAR_PAUSED)

    lines = server.output()
    assert all(re.match(LINE_PATTERN, line) for line in lines)
    # d.M.yyyy: neither day nor month is zero-padded.
    assert all(re.match(r"^[1-9]\d?\.[1-9]\d?\.\d{4} ", line) for line in lines)
    ready = next(i for i, line in enumerate(lines) if "now running" in line)
    assert re.search(r"\[Server Notification\] Entering runphase RunGame$", lines[ready - 2])

    for name in ("Cache", "Saves", "BackupSaves", "Playerdata", "Backups", "Logs", "Macros"):
        assert (data_path / name).is_dir()
    config = json.loads((data_path / "serverconfig.json").read_text())
    assert config["Port"] == 42420
    assert config["WorldConfig"]["SaveFileLocation"] == str(db)
    # The world is open in WAL mode, and the fake keeps committing to it while it runs.
    assert wal(db).exists()
    wait_for(lambda: sum(kind == "tick" for _, kind in world_writes(db)) >= 2, 10, "tick rows")
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    finally:
        connection.close()
    assert {"chunks", "gamedata"} <= tables

    log = (data_path / "Logs" / "server-main.log").read_text(encoding="utf-8").splitlines()
    assert re.match(rf"^{TS} \[Notification\] Server logger started\.$", log[0])
    assert any(re.match(rf"^{TS} \[Event\] Dedicated Server now running on Port", x) for x in log)

    server.command("/stop")
    assert server.wait() == 0


def test_port_listens_before_ready_and_sigterm_aborts_startup(spawn: Spawn) -> None:
    port = free_port()
    server = spawn(port=port, startup_s=300)  # 3 s of startup at this scale
    server.expect(N + r"Entering runphase Configuration$")
    server.expect(N + r"Loading savegame$")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as probe:
        probe.settimeout(5)
        assert probe.recv(1) == b""  # accepted, then closed
    assert not any("now running" in line for line in server.output())

    server.signal(signal.SIGTERM)
    server.expect(N + "Server termination event received. Shutting down server$")
    server.expect(r"Stop reason: External close event \(CTRL\+C/kill/etc\)$")
    server.expect(E + r"Stopped the server!$")
    server.expect(N + r"Server: Exit\(\) called$")
    assert server.wait() == 0
    assert not any("now running" in line for line in server.output())


def test_commands_sent_during_startup_run_after_ready(spawn: Spawn) -> None:
    server = spawn(startup_s=50)
    server.write(b"/stats compact\n")
    server.write(b"/stop\n")
    server.expect(READY_ALL)
    server.expect(N + r"Handling Console Command /stats compact$")
    server.expect(N + r"Version: 1\.21\.6;Uptime: ")
    server.expect(N + r"Handling Console Command /stop $")
    expect_stop(server, "Shutdown via server command")
    assert server.wait() == 0
    lines = server.output()
    ready = next(i for i, line in enumerate(lines) if "now running" in line)
    first_echo = next(i for i, line in enumerate(lines) if "Handling Console Command" in line)
    assert ready < first_echo


def test_port_equals_form_ip_relative_data_path_and_unknown_options(
    spawn: Spawn, tmp_path: Path
) -> None:
    port = free_port()
    server = spawn(
        data=Path("relative-data"),
        cwd=tmp_path,
        args=(f"--port={port}", "--ip", "127.0.0.1", "--addModPath", "/x", "--tracelog"),
    )
    server.expect(N + rf"Savegame {re.escape(str(tmp_path / 'relative-data'))}/Saves/")
    server.expect(E + rf"Dedicated Server now running on Port {port} and ip 127\.0\.0\.1!$")
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
    server.signal(signal.SIGINT)
    server.expect(N + "Server termination event received")
    assert server.wait() == 0


# --------------------------------------------------------------------------------------------
# Stopping


def test_stop_with_exit_code_saves_and_checkpoints(
    spawn: Spawn, data_path: Path, fifo: Path
) -> None:
    control = FakeServerControl(fifo)
    server = spawn(control=fifo)
    ready_and_idle(server)
    control.join("Alice")
    server.expect(E + r"Alice \[::ffff:127\.0\.0\.1\]:51234 joins\.$")
    db = world(data_path)
    wait_for(lambda: len(world_writes(db)) >= 2, 10, "tick rows")

    server.command("/stop 3")
    reason = "Server shutting down - Shutdown via server command"
    for pattern in [
        N + r"Handling Console Command /stop 3$",
        N + r"Message to all in group 0: Console Admin commenced a server shutdown$",
        E + r"Console Admin shuts down server\.$",
        N + rf"Client 1 disconnected: {reason}$",
        E + rf"Player Alice got removed\. Reason: {reason}$",
    ]:
        server.expect(pattern)
    expect_stop(server, "Shutdown via server command")
    server.expect(N + r"Shut down command executed$")
    assert server.wait() == 3
    assert_checkpointed(db)


def test_sigterm_is_the_graceful_stop(spawn: Spawn, data_path: Path) -> None:
    server = spawn()
    ready_and_idle(server)
    mark = server.mark()
    server.signal(signal.SIGTERM)
    expect_stop(server, "External close event (CTRL+C/kill/etc)")
    server.expect(N + r"Server: Exit\(\) called$")
    assert server.wait() == 0
    after = body(server.since(mark))
    assert (
        after[0] == "[Server Notification] Server termination event received. Shutting down server"
    )
    assert after[-1] == "[Server Notification] Server: Exit() called"
    assert_checkpointed(world(data_path))


def test_slow_stop_takes_its_time_and_ignores_a_second_sigterm(
    spawn: Spawn, data_path: Path
) -> None:
    server = spawn(mode="slow_stop", stop_s=0.4)
    ready_and_idle(server)
    started = time.monotonic()
    server.signal(signal.SIGTERM)
    server.expect(E + r"Mods and systems notified, now saving everything\.\.\.$")
    server.signal(signal.SIGTERM)
    server.expect(E + r"Stopped the server!$")
    assert server.wait() == 0
    # Unscaled in this mode: the save alone takes FAKE_VS_STOP_S.
    assert time.monotonic() - started >= 0.4
    lines = body(server.output())
    assert (
        lines.count("[Server Notification] Server termination event received. Shutting down server")
        == 2
    )
    assert sum("Server stop requested" in line for line in lines) == 1
    assert_checkpointed(world(data_path))


def test_hang_on_stop_only_ends_with_sigkill(spawn: Spawn, data_path: Path) -> None:
    server = spawn(mode="hang_on_stop")
    ready_and_idle(server)
    server.command("/stop")
    server.expect(E + r"Shutting down \d+ server threads\.\.\. $")
    server.expect(E + r"Killed console thread$")
    server.expect(E + r"Waiting for a server thread to shut down \(54/60\)\.\.\.$")
    server.signal(signal.SIGTERM)
    server.expect(N + "Server termination event received")
    server.expect(E + r"Waiting for a server thread to shut down \(\d+/60\)\.\.\.$")
    server.expect(E + r"Waiting for a server thread to shut down \(\d+/60\)\.\.\.$")
    assert server.alive()
    assert not any("Stopped the server!" in line for line in server.output())
    server.signal(signal.SIGKILL)
    assert server.wait() == -signal.SIGKILL.value
    # The save ran before the hang, so the world is complete.
    assert world_writes(world(data_path))[-1][1] == "shutdown"


def test_ignore_sigterm_leaves_only_sigkill(spawn: Spawn) -> None:
    server = spawn(mode="ignore_sigterm")
    ready_and_idle(server)
    server.signal(signal.SIGTERM)
    server.expect(N + "Server termination event received. Shutting down server$")
    server.command("/stop")
    server.command("/stats compact")
    (after_stop,) = reply(server, r"/stop $", 1)
    assert re.search(N + r"Handling Console Command /stats compact$", after_stop)
    server.expect(r"Players online: 0 / 16;")
    server.signal(signal.SIGINT)
    server.expect(N + "Server termination event received")
    server.command("/announce still here")
    server.expect(E + r"Console Admin announced: still here\.$")
    assert not any("Server stop requested" in line for line in server.output())
    server.signal(signal.SIGKILL)
    assert server.wait() == -signal.SIGKILL.value


# --------------------------------------------------------------------------------------------
# stdin


def test_lines_mode_runs_both_commands_of_a_coalesced_write(spawn: Spawn) -> None:
    server = spawn(stdin="lines")
    ready_and_idle(server)
    server.write(b"/a\n/b\n")
    server.expect(N + r"Handling Console Command /a $")
    server.expect(N + r"Handling Console Command /b $")
    server.command("/stop")
    assert server.wait() == 0


def test_chunks_mode_turns_a_coalesced_write_into_one_unknown_command(spawn: Spawn) -> None:
    server = spawn(stdin="chunks")
    ready_and_idle(server)
    server.write(b"/a\n/b\n")
    # One read gets both lines; the real parse makes them the single command "a\nb", whose echo
    # spans two lines and which nothing handles.
    assert reply(server, r"/a$", 1) == ["b "]
    server.command("/stats compact")
    server.expect(N + r"Handling Console Command /stats compact$")
    server.expect(r"Players online: 0 / 16;")
    assert not any("Handling Console Command /b" in line for line in server.output())
    server.command("/stop")
    assert server.wait() == 0


def test_chunks_mode_reader_gives_up_on_a_partial_chunk(spawn: Spawn) -> None:
    server = spawn(stdin="chunks")
    ready_and_idle(server)
    server.write(b"/stats")  # no newline: the real reader leaves its loop here
    wait_for(lambda: server.unread_stdin() == 0, 10, "the fake to read the partial chunk")
    server.write(b"/stop\n")
    server.signal(signal.SIGTERM)
    server.expect(r"Stop reason: External close event")
    assert server.wait() == 0
    assert not any("Handling Console Command" in line for line in server.output())
    assert server.unread_stdin() == len(b"/stop\n")


def test_eof_on_stdin_keeps_the_server_running(spawn: Spawn, fifo: Path) -> None:
    control = FakeServerControl(fifo)
    server = spawn(control=fifo)
    ready_and_idle(server)
    server.close_stdin()
    control.storm()
    server.expect(N + r"Message to all in group 0: A light temporal storm is imminent$")
    assert server.alive()
    server.signal(signal.SIGTERM)
    assert server.wait() == 0


def test_chat_dot_empty_and_unknown_lines(spawn: Spawn) -> None:
    server = spawn()
    ready_and_idle(server)
    server.write(b"hello <b>{x}</b>\n.secret\n\n   \n/nosuchcommand arg\n/stats compact\n")
    server.expect(N + r"Message to all in group 0: <strong>Admin:</strong>hello <b>\{x\}</b>$")
    server.expect(r"\[Server Chat\] Admin: hello <b>\{x\}</b>$")
    after = reply(server, r"/nosuchcommand arg$", 1)
    assert re.search(r"Handling Console Command /stats compact$", after[0])
    assert not any("secret" in line for line in server.output())


# --------------------------------------------------------------------------------------------
# Commands


def test_announce(spawn: Spawn) -> None:
    server = spawn()
    ready_and_idle(server)
    server.command("/announce Restart in 5 minutes")
    assert body(reply(server, r"/announce Restart in 5 minutes$", 3)) == [
        "[Server Event] Console Admin announced: Restart in 5 minutes.",
        '[Server Notification] Message to all in group 0: <strong><font color="orange">'
        "Restart in 5 minutes</font></strong>",
        "[Server Notification] ",
    ]
    server.command("/announce Use {braces}")
    server.command("/announce")
    assert body(reply(server, r"/announce Use \{braces\}$", 3)) == [
        '[Server Notification] Message to all in group 0: <strong><font color="orange">'
        "Use {braces}</font></strong>",
        "[Server Notification] ",
        "[Server Notification] Handling Console Command /announce ",
    ]
    assert body(reply(server, r"/announce $", 1)) == [
        "[Server Notification] Missing argument: announcement message"
    ]
    server.command("/stop")
    assert server.wait() == 0


def test_autosavenow_and_the_offthread_save(spawn: Spawn, data_path: Path) -> None:
    server = spawn(offthread_s=50)  # 0.5 s off-thread phase at this scale
    ready_and_idle(server)
    server.write(b"/autosavenow\n/autosavenow\n")
    assert body(reply(server, r"/autosavenow $", 10)) == [
        "[Server Notification] Server ticking has been suspended",
        "[Server Notification] Autosaving game world. Notifying mods, then systems of save...",
        "[Server Event] Mods and systems notified, now saving everything...",
        "[Server Event] Will do offthread savegamedata saving...",
        "[Server Event] Saved player world data...",
        "[Server Event] Saved map regions...",
        "[Server Event] Saved map chunks...",
        "[Server Event] World saved! Saved 0 chunks, 0 mapchunks, 7 mapregions.",
        "[Server Notification] Server ticking has been resumed",
        "[Server Notification] Autosave completed",
    ]
    second = body(reply(server, r"/autosavenow $", 2))
    assert re.match(
        r"\[Server Warning\] Call to autosave, but server is already saving\..*"
        r"Will ignore this autosave call\.$",
        second[0],
    )
    assert second[1] == "[Server Notification] Autosave completed"
    db = world(data_path)
    assert "autosave" not in {kind for _, kind in world_writes(db)}
    server.expect(E + r"Offthread save of \d+ chunks done\.$")
    server.expect(N + r"Offthread save of \d+ generating chunks done\.$")
    server.expect(E + r"Offthread save of \d+ map chunks done\.$")
    server.expect(E + r"Offthread save of savegame done\.$")
    # Committed before that line, and not checkpointed.
    assert "autosave" in {kind for _, kind in world_writes(db)}
    assert wal(db).stat().st_size > 0
    server.command("/autosavenow")
    assert body(reply(server, r"/autosavenow $", 1)) == [
        "[Server Notification] Server ticking has been suspended"
    ]
    server.command("/stop")
    assert server.wait() == 0


def test_genbackup_writes_a_consistent_copy(spawn: Spawn, data_path: Path) -> None:
    server = spawn()
    ready_and_idle(server)
    db = world(data_path)
    backups = data_path / "Backups"
    wait_for(lambda: len(world_writes(db)) >= 3, 10, "tick rows")
    committed = world_writes(db)[-1][0]

    server.command("/genbackup nightly.vcdbs")
    assert body(reply(server, r"/genbackup nightly\.vcdbs$", 1)) == [
        "[Server Notification] Ok, generating backup, this might take a while"
    ]
    server.expect(N + r"Backup complete!$")
    copy = backups / "nightly.vcdbs"
    assert sorted(p.name for p in backups.iterdir()) == ["nightly.vcdbs"]
    assert integrity(copy) == "ok"
    connection = sqlite3.connect(f"file:{copy}?mode=ro", uri=True)
    try:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        assert connection.execute("SELECT count(*) FROM gamedata").fetchone() == (1,)
        assert connection.execute("SELECT count(*) FROM chunks").fetchone()[0] > 0
    finally:
        connection.close()
    # Every row committed before the command is in the copy.
    assert world_writes(copy)[-1][0] >= committed
    assert sorted(p.name for p in backups.iterdir()) == ["nightly.vcdbs"]

    server.command("/genbackup ../../escape.vcdbs")
    server.expect(N + r"Backup complete!$")
    server.command("/db backup viadb.vcdbs")
    server.expect(N + r"Handling Console Command /db backup viadb\.vcdbs$")
    server.expect(N + r"Backup complete!$")
    server.command("/genbackup")
    server.expect(N + r"Handling Console Command /genbackup $")
    server.expect(N + r"Backup complete!$")
    names = sorted(p.name for p in backups.iterdir())
    assert re.fullmatch(r"default-\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}\.vcdbs", names[0])
    assert names[1:] == ["escape.vcdbs", "nightly.vcdbs", "viadb.vcdbs"]
    assert not (data_path.parent / "escape.vcdbs").exists()
    server.command("/stop")
    assert server.wait() == 0


def test_genbackup_while_one_runs(spawn: Spawn, data_path: Path) -> None:
    server = spawn(backup_s=40)  # 0.4 s at this scale
    ready_and_idle(server)
    server.write(b"/genbackup one.vcdbs\n/genbackup two.vcdbs\n")
    assert body(reply(server, r"/genbackup one\.vcdbs$", 1)) == [
        "[Server Notification] Ok, generating backup, this might take a while"
    ]
    assert body(reply(server, r"/genbackup two\.vcdbs$", 2)) == [
        "[Server Notification] Can't run backup. A backup is already in progress",
        "[Server Notification] Ok, generating backup, this might take a while",
    ]
    server.expect(N + r"Backup complete!$")
    server.command("/stop")
    assert server.wait() == 0
    assert sum("Backup complete!" in line for line in server.output()) == 1
    assert sorted(p.name for p in (data_path / "Backups").iterdir()) == ["one.vcdbs"]


def test_stats_counts_players(spawn: Spawn, fifo: Path) -> None:
    control = FakeServerControl(fifo)
    server = spawn(control=fifo, args=("--maxclients", "8"))
    ready_and_idle(server)
    server.command("/stats compact")
    (line,) = reply(server, r"/stats compact$", 1)
    assert re.search(
        N + r"Version: 1\.21\.6;Uptime: 0 days, 0 hours, 0 minutes, \d+ seconds;"
        r"Players last online: \d+ seconds ago;Players online: 0 / 8;;Memory usage",
        line,
    )
    control.join("Alice")
    control.join("Bob", port=51235)
    server.expect(E + r"Bob \[::ffff:127\.0\.0\.1\]:51235 joins\.$")
    server.command("/stats compact")
    (line,) = reply(server, r"/stats compact$", 1)
    assert ";Players online: 2 / 8 (Alice, Bob);" in line
    server.command("/stats")
    block = body(reply(server, r"/stats $", 13))
    assert block[0] == "[Server Notification] Version: 1.21.6"
    assert re.fullmatch(r"Uptime: 0 days, 0 hours, 0 minutes, \d+ seconds", block[1])
    assert block[2] == "Players last online: 0 seconds ago"
    assert block[3] == "Players online: 2 / 8 (Alice, Bob)"
    assert block[4] == ""
    assert block[5].startswith("Memory usage Managed/Total: ")
    assert block[-1] == "Network UDP: 0 Packets/s or 0 Kb/s"
    server.command("/stop")
    assert server.wait() == 0


@pytest.mark.parametrize("list_format", ["1.20", "1.22"])
def test_list_clients(spawn: Spawn, fifo: Path, list_format: str) -> None:
    control = FakeServerControl(fifo)
    server = spawn(control=fifo, list_format=list_format)
    ready_and_idle(server)
    control.join("Alice", ip="10.0.0.5", port=40000)
    control.join("Bob")
    server.expect(E + r"Bob \[::ffff:127\.0\.0\.1\]:51234 joins\.$")
    server.command("/list clients")
    server.command("/list c")
    server.command("/list")
    first = body(reply(server, r"/list clients$", 4))
    if list_format == "1.20":
        players = ["[1] Alice [::ffff:10.0.0.5]:40000", "[2] Bob [::ffff:127.0.0.1]:51234"]
        assert first[1:3] == players
    else:
        assert re.fullmatch(
            r"Playing \[1\] Alice \[::ffff:10\.0\.0\.5\]:40000 \(\d+ms\) \(\d+s inactive\)",
            first[1],
        )
        assert re.fullmatch(r"Playing \[2\] Bob \[::ffff:127\.0\.0\.1\]:51234 .*", first[2])
    assert first[0] == "[Server Notification] List of online Players"
    assert first[3] == ""
    assert body(reply(server, r"/list c$", 1)) == ["[Server Notification] List of online Players"]
    assert body(reply(server, r"/list $", 1)) == [
        "[Server Notification] Syntax error, requires argument "
        "clients|banned|roles|privileges or c|b|r|p"
    ]
    server.command("/stop")
    assert server.wait() == 0


def test_restart_keeps_config_and_world_and_archives_logs(spawn: Spawn, data_path: Path) -> None:
    server = spawn()
    ready_and_idle(server)
    server.command("/serverconfig maxclients 20")
    assert body(reply(server, r"/serverconfig maxclients 20$", 1)) == [
        "[Server Notification] Max amount of clients set to 20"
    ]
    server.command("/serverconfig maxclients")
    assert body(reply(server, r"/serverconfig maxclients$", 1)) == [
        "[Server Notification] Current Max amount of clients is 20"
    ]
    server.command("/stop")
    assert server.wait() == 0
    assert json.loads((data_path / "serverconfig.json").read_text())["MaxClients"] == 20
    first_log = (data_path / "Logs" / "server-main.log").read_text(encoding="utf-8")

    again = spawn()
    ready_and_idle(again)
    again.command("/stats compact")
    assert ";Players online: 0 / 20;" in reply(again, r"/stats compact$", 1)[0]
    again.command("/stop")
    assert again.wait() == 0
    archived = list((data_path / "Logs" / "Archive").glob("*/server-main.log"))
    assert len(archived) == 1
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}_\d{2}_\d{2}_\d{2}", archived[0].parent.name)
    assert archived[0].read_text(encoding="utf-8") == first_log
    current = (data_path / "Logs" / "server-main.log").read_text(encoding="utf-8")
    assert "Players online: 0 / 20" in current
    assert "Players online: 0 / 20" not in first_log
    kinds = [kind for _, kind in world_writes(world(data_path))]
    assert kinds.count("shutdown") == 2


# --------------------------------------------------------------------------------------------
# Hooks


def test_player_hooks(spawn: Spawn, fifo: Path) -> None:
    control = FakeServerControl(fifo)
    server = spawn(control=fifo)
    ready_and_idle(server)
    control.join("Alice")
    for pattern in [
        N + r"A Client attempts connecting via TCP on \[::ffff:127\.0\.0\.1\]:51234, "
        r"assigning client id 1$",
        N + r"Client 1 uid \S+ attempting identification\. Name: Alice$",
        N + r"Placing Alice at ",
        E + r"Alice \[::ffff:127\.0\.0\.1\]:51234 joins\.$",
        N + r"A client reconnected, resuming game calendar\.$",
    ]:
        server.expect(pattern)
    control.join("Bob", port=51299)
    server.expect(E + r"Bob \[::ffff:127\.0\.0\.1\]:51299 joins\.$")
    mark = server.cursor
    control.chat("Bob", "hi <there>")
    server.expect(r"\[Server Chat\] 0 \| Bob: hi &lt;there&gt;$")
    control.leave("Bob")
    server.expect(E + r"Client 2 disconnected\.$")
    server.expect(N + r"Client 2 disconnected: $")
    server.expect(E + r"Player Bob left\.$")
    control.kick("Alice", "griefing")
    server.expect(N + r"Client 1 disconnected: griefing$")
    server.expect(E + r"Player Alice got removed\. Reason: griefing$")
    server.expect(CALENDAR_PAUSED)
    control.join("Carol")
    server.expect(E + r"Carol \[::ffff:127\.0\.0\.1\]:51234 joins\.$")
    control.timeout_player("Carol")
    server.expect(N + r"20s ping timeout for Carol\. Kicking player\.\.\.$")
    server.expect(N + r"Client 3 disconnected: \S")
    server.expect(E + r"Player Carol got removed\. Reason: \S")
    server.expect(CALENDAR_PAUSED)
    # Only the first player resumes the calendar, and only the last one pauses it.
    between = server.since(mark)
    bob_left = next(i for i, line in enumerate(between) if "Player Bob left." in line)
    assert not any("calendar" in line for line in between[: bob_left + 1])
    server.command("/stop")
    assert server.wait() == 0


def test_event_hooks(spawn: Spawn, fifo: Path) -> None:
    control = FakeServerControl(fifo)
    server = spawn(control=fifo)
    ready_and_idle(server)
    control.error()
    server.expect(
        r"\[Server Error\] Exception: Object reference not set to an instance of an object\.$"
    )
    start = server.cursor
    wait_for(lambda: server.mark() >= start + 2, 10, "stack lines")
    assert all(line.startswith("   at ") for line in server.since(start)[:2])
    control.overload()
    server.expect(r"\[Server Warning\] Server overloaded\. A tick took 563ms to complete\.$")
    control.storm()
    server.expect(N + r"Message to all in group 0: A light temporal storm is imminent$")
    server.command("/stop")
    assert server.wait() == 0


def test_flood_hook_prints_that_many_real_lines_and_ends_on_a_chat_line(
    spawn: Spawn, fifo: Path, data_path: Path
) -> None:
    control = FakeServerControl(fifo)
    server = spawn(control=fifo)
    ready_and_idle(server)
    start = server.cursor
    control.flood(1000)
    server.expect(r"\[Server Chat\] 0 \| Player\d: flood line 1000 of 1000$")
    lines = server.since(start)
    assert len(lines) == 1000
    kinds: dict[str, int] = {}
    for line in lines:
        match = re.match(LINE_PATTERN, line)
        kind = match.group(5) if match else "raw"
        kinds[kind] = kinds.get(kind, 0) + 1
    # Every raw line is a stack line continuing the exception before it.
    assert kinds == {"Chat": 500, "Event": 100, "Warning": 100, "Error": 100, "raw": 200}
    assert all(line.startswith("   at ") for line in lines if not re.match(LINE_PATTERN, line))
    server.command("/stop")
    assert server.wait() == 0
    log = (data_path / "Logs" / "server-main.log").read_text(encoding="utf-8")
    assert re.search(rf"^{TS} \[Chat\] 0 \| Player\d: flood line 1000 of 1000$", log, re.M)


@pytest.mark.parametrize("line", ["flood", "flood 0", "flood -5", "flood many", "flood 99999999"])
def test_flood_hook_without_a_usable_count_is_no_hook(line: str) -> None:
    assert fake_vs_server.parse_hook_line(line) is None
    assert fake_vs_server.parse_hook_line("flood 3") == fake_vs_server.Hook("flood", text="3")


def test_ready_mark_holds_the_monotonic_time_of_the_ready_line(
    spawn: Spawn, tmp_path: Path
) -> None:
    mark = tmp_path / "ready.mark"
    before = time.monotonic()
    server = spawn(ready_mark=mark)
    server.expect(READY_ALL)
    seen = time.monotonic()
    wait_for(mark.exists, 10, "the ready mark")
    # Taken just before the ready line was written, on the clock every process shares.
    assert before < float(mark.read_text()) < seen
    server.command("/stop")
    assert server.wait() == 0


def test_scripted_hooks(spawn: Spawn) -> None:
    script = [
        {"t": 0.05, "do": "join", "name": "Dave", "ip": "10.1.2.3", "port": 6000},
        {"t": 0.1, "do": "chat", "name": "Dave", "text": "hello"},
        {"t": 0.15, "line": "kick Dave bye now"},
    ]
    server = spawn(script=script)
    server.expect(READY_ALL)
    server.expect(E + r"Dave \[::ffff:10\.1\.2\.3\]:6000 joins\.$")
    server.expect(r"\[Server Chat\] 0 \| Dave: hello$")
    server.expect(E + r"Player Dave got removed\. Reason: bye now$")
    server.command("/stop")
    assert server.wait() == 0


@pytest.mark.parametrize(
    ("kind", "reason", "first", "last"),
    [
        ("disk", "Out of disk space", r"\[Server Fatal\] Disk space is below \d+ megabytes", None),
        (
            "errors",
            "Too many errors detected. See server-main.log file",
            None,
            r"\[Server Error\] More then 100000 errors detected\. Shutting down now\. "
            r'Threshold can be changed in serverconfig\.json "DieAboveErrorCount"$',
        ),
        (
            "ram",
            "Server is consuming too much RAM",
            None,
            r"\[Server Error\] Server is consuming more then \d+ MB of RAM$",
        ),
    ],
)
def test_selfstop_hooks(
    spawn: Spawn,
    fifo: Path,
    data_path: Path,
    kind: str,
    reason: str,
    first: str | None,
    last: str | None,
) -> None:
    control = FakeServerControl(fifo)
    server = spawn(control=fifo)
    ready_and_idle(server)
    control.join("Alice")
    server.expect(E + r"Alice \S+ joins\.$")
    control.selfstop(kind)
    if first:
        server.expect(first)
    server.expect(
        E + rf"Player Alice got removed\. Reason: Server shutting down - {re.escape(reason)}$"
    )
    expect_stop(server, reason)
    if last:
        server.expect(last)
    assert server.wait() == 0
    assert_checkpointed(world(data_path))


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("selfstop_errors", "Too many errors detected. See server-main.log file"),
        ("selfstop_disk", "Out of disk space"),
    ],
)
def test_selfstop_modes(spawn: Spawn, mode: str, reason: str) -> None:
    server = spawn(mode=mode)
    server.expect(READY_ALL)
    expect_stop(server, reason)
    assert server.wait() == 0


# --------------------------------------------------------------------------------------------
# Failure modes


@pytest.mark.parametrize("crash_exit", [None, 7])
def test_crash_startup(spawn: Spawn, data_path: Path, crash_exit: int | None) -> None:
    server = spawn(mode="crash_startup", crash_exit=crash_exit)
    server.expect(N + r"Entering runphase LoadAssets$")
    server.expect(r"\[Server Fatal\] Game Version: v1\.21\.6 \(Stable\)$")
    server.expect(r"^\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2}: Critical error occurred$")
    server.expect(r"^Loaded Mods: game@1\.21\.6")
    server.expect(r"^System\.InvalidOperationException: boom$")
    crash_file = data_path / "Logs" / "server-crash.log"
    server.expect(rf'^Crash written to file at "{re.escape(str(crash_file))}"$')
    server.expect(r"^Game Version: v1\.21\.6 \(Stable\)$")  # the raw repeat
    assert server.wait() == (crash_exit or 0)
    lines = server.output()
    assert not any("AssetsFinalize" in line or "now running" in line for line in lines)
    assert "Critical error occurred" in crash_file.read_text(encoding="utf-8")
    assert server.stderr_lines == []
    assert integrity(world(data_path)) == "ok"


@pytest.mark.parametrize("trigger", ["mode", "hook"])
def test_crash_runtime_aborts(spawn: Spawn, data_path: Path, fifo: Path, trigger: str) -> None:
    if trigger == "mode":
        server = spawn(mode="crash_runtime")
        server.expect(READY_ALL)
    else:
        control = FakeServerControl(fifo)
        server = spawn(control=fifo)
        ready_and_idle(server)
        control.crash()
    server.expect(r"^Unhandled Exception occurred$")
    server.expect(r"\[Server Fatal\] Game Version: v1\.21\.6 \(Stable\)$")
    server.expect(r'^Crash written to file at ".*server-crash\.log"$')
    assert server.wait() == -ABORT
    server.expect_stderr(r"^Unhandled exception\. System\.InvalidOperationException: boom$")
    # No save: what was committed is still only in the WAL.
    db = world(data_path)
    assert wal(db).stat().st_size > 0
    assert integrity(db) == "ok"
    assert (data_path / "Logs" / "server-crash.log").exists()
    assert not any(p.name.startswith("core") for p in data_path.iterdir())


def test_no_ready_idles_until_sigterm(spawn: Spawn) -> None:
    server = spawn(mode="no_ready")
    server.expect(N + r"Entering runphase WorldReady$")
    server.command("/stats")
    server.signal(signal.SIGTERM)
    server.expect(N + "Server termination event received")
    assert server.wait() == 0
    lines = server.output()
    assert not any("now running" in line or "Handling Console" in line for line in lines)
    assert not any("Starting world generators" in line for line in lines)


def test_missing_runtime(spawn: Spawn, data_path: Path) -> None:
    server = spawn(mode="missing_runtime")
    assert server.wait() == 150
    server.expect_stderr(r"^You must install or update \.NET to run this application\.$")
    server.expect_stderr(r"^Framework: 'Microsoft\.NETCore\.App', version '8\.0\.0' \(x64\)$")
    assert server.output() == []
    assert not data_path.exists()


@pytest.mark.parametrize("source", ["env", "serverconfig"])
def test_french(spawn: Spawn, data_path: Path, fifo: Path, source: str) -> None:
    if source == "serverconfig":
        data_path.mkdir()
        (data_path / "serverconfig.json").write_text(json.dumps({"ServerLanguage": "fr"}))
    control = FakeServerControl(fifo)
    server = spawn(control=fifo, lang="fr" if source == "env" else None)
    server.expect(E + r"Serveur dédié now running sur le port \d+ et toutes les IPs!$")
    server.expect(CALENDAR_PAUSED)
    control.join("Alice")
    control.leave("Alice")
    server.expect(E + r"Le joueur Alice est parti\.$")
    server.command("/genbackup fr.vcdbs")
    server.expect(N + r"Ok, création de la sauvegarde")
    server.expect(N + r"Sauvegarde terminée !$")
    server.command("/stop")
    assert server.wait() == 0
    log = (data_path / "Logs" / "server-main.log").read_text(encoding="utf-8")
    assert "[Event] Serveur dédié now running" in log


# --------------------------------------------------------------------------------------------
# The module itself


def test_importing_the_module_has_no_side_effects() -> None:
    handler = signal.getsignal(signal.SIGTERM)
    assert callable(fake_vs_server.main)
    assert signal.getsignal(signal.SIGTERM) is handler
    command = fake_server_command()
    assert command[1].endswith("fake_vs_server.py")
    assert os.path.isfile(command[1])


def test_bad_knob_is_reported_on_stderr(spawn: Spawn) -> None:
    server = spawn(mode="bogus")
    assert server.wait() == 2
    server.expect_stderr(r"FAKE_VS_MODE must be one of")
