"""The console: reading entries, sending commands one per write, and who may."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.fake_vs_client import FakeServerControl
from tests.support.gameserver import ADMIN, SERVER, console_texts, wait_until
from tests.support.keys import MONITOR_KEY
from vintagestory_api.gameserver.console import (
    MAX_LINE,
    ConsoleBuffer,
    ConsoleEntry,
    pump_stdout,
)

COMMAND = f"{SERVER}/console/command"


def _running(client: TestClient) -> None:
    client.post(f"{SERVER}/start", headers=ADMIN)
    wait_until(client, lambda s: s["state"] == "running", what="running")


@pytest.mark.parametrize("knobs", [{"stdin": "chunks"}])
def test_chunks_mode_loses_no_command_of_twenty_sent_back_to_back(game: TestClient) -> None:
    _running(game)
    names = [f"/probe{i}" for i in range(20)]

    def send(name: str) -> dict[str, Any]:
        response = game.post(COMMAND, headers=ADMIN, json={"command": f"{name} arg"})
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    with ThreadPoolExecutor(max_workers=20) as pool:
        replies = list(pool.map(send, names))
    assert all(reply["echoed"] for reply in replies)
    echoes = [t for t in console_texts(game) if t.startswith("Handling Console Command /probe")]
    assert sorted(echoes) == sorted(f"Handling Console Command {n} arg" for n in names)


def test_a_command_answers_its_echo_and_reply_lines(game: TestClient) -> None:
    _running(game)
    response = game.post(COMMAND, headers=ADMIN, json={"command": "/stats"})
    assert response.status_code == 200
    lines = response.json()["data"]["lines"]
    assert lines[0]["text"] == "Handling Console Command /stats "
    # The multi-line /stats block is one entry, its continuation lines joined.
    block = next(line for line in lines if line["text"].startswith("Version: "))
    assert "\nPlayers online: 0 / " in block["text"]


def test_say_broadcasts_as_admin(game: TestClient) -> None:
    _running(game)
    response = game.post(COMMAND, headers=ADMIN, json={"say": "hello all"})
    assert response.status_code == 200
    texts = [line["text"] for line in response.json()["data"]["lines"]]
    assert "Admin: hello all" in texts


@pytest.mark.parametrize(
    "body",
    [
        {"command": "stop"},
        {"command": "/stats\n/stop"},
        {"command": "/say \x07"},
        {"command": "/" + "x" * 1024},
        {"command": "/stats", "say": "both"},
        {},
    ],
    ids=["no_slash", "newline", "control", "too_long", "both", "neither"],
)
def test_invalid_commands_are_refused_with_422(game: TestClient, body: dict[str, Any]) -> None:
    response = game.post(COMMAND, headers=ADMIN, json=body)
    assert response.status_code == 422
    assert response.json()["error"]["code"] in ("INVALID_COMMAND", "VALIDATION_ERROR")


def test_text_without_a_slash_is_refused_naming_the_field(game: TestClient) -> None:
    response = game.post(COMMAND, headers=ADMIN, json={"command": "stop"})
    assert response.status_code == 422
    message = response.json()["error"]["message"]
    # Only the model the caller meant is spoken of, in words, not as a regular expression.
    assert message.startswith("ConsoleCommand.command: must start with /")
    assert "chat" in message
    assert "ConsoleSay" not in message
    neither = game.post(COMMAND, headers=ADMIN, json={})
    assert neither.json()["error"]["message"] == "body: one of command or say is required"


def test_a_command_over_one_kilobyte_of_utf8_is_invalid_command(game: TestClient) -> None:
    # 400 characters, 1200 bytes: within the schema's length, over the console's limit.
    response = game.post(COMMAND, headers=ADMIN, json={"command": "/say " + "€" * 400})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "INVALID_COMMAND"


def test_a_command_while_stopped_is_409(game: TestClient) -> None:
    response = game.post(COMMAND, headers=ADMIN, json={"command": "/stats"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "SERVER_NOT_RUNNING"


def test_console_is_admin_only_and_after_seq_reads_on(game: TestClient) -> None:
    monitor = {"X-API-Key": MONITOR_KEY}
    assert game.get(f"{SERVER}/console", headers=monitor).status_code == 403
    assert game.post(COMMAND, headers=monitor, json={"command": "/stats"}).status_code == 403
    assert game.get(f"{SERVER}", headers=monitor).status_code == 200
    assert game.get(f"{SERVER}").status_code == 401
    _running(game)
    first = game.get(f"{SERVER}/console", params={"limit": 3}, headers=ADMIN).json()["data"]
    assert len(first["entries"]) == 3
    seq = first["entries"][0]["seq"]
    later = game.get(
        f"{SERVER}/console", params={"after_seq": seq, "limit": 2}, headers=ADMIN
    ).json()["data"]
    assert [e["seq"] for e in later["entries"]] == [seq + 1, seq + 2]


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_players_follow_joins_and_leaves_and_the_poll_corrects_a_missed_leave(
    game_settings: Any, fifo: Path, lang: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vintagestory_api.app import create_app

    monkeypatch.setenv("FAKE_VS_CONTROL", str(fifo))
    monkeypatch.setenv("FAKE_VS_LANG", lang)
    control = FakeServerControl(fifo)
    with TestClient(create_app(game_settings)) as client:
        _running(client)
        control.join("Alice")
        control.join("Bob", port=51235)
        players = _players_within(client, {"Alice", "Bob"}, timeout=1.0)
        assert players["count"] == 2
        # A French server's leave line is not the English one we parse: the poll corrects it.
        control.leave("Alice")
        _players_within(client, {"Bob"}, timeout=1.0 if lang == "en" else 3.0)
        control.kick("Bob", "bye")
        final = _players_within(client, set(), timeout=1.0 if lang == "en" else 3.0)
        assert final["polled_at"] is not None
        assert client.get(f"{SERVER}", headers=ADMIN).json()["data"]["players_online"] == 0


def _players_within(client: TestClient, names: set[str], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        data: dict[str, Any] = client.get(f"{SERVER}/players", headers=ADMIN).json()["data"]
        if {p["name"] for p in data["players"]} == names:
            return data
        if time.monotonic() >= deadline:
            raise AssertionError(f"players were {data['players']}, not {sorted(names)}")
        time.sleep(0.02)


# --- reading a pipe: a real StreamReader fed the bytes a server would write --------------------

STAMP = "1.2.2026 10:00:00"


def _stream(*chunks: bytes, eof: bool = True) -> asyncio.StreamReader:
    stream = asyncio.StreamReader(limit=2 * MAX_LINE)
    for chunk in chunks:
        stream.feed_data(chunk)
    if eof:
        stream.feed_eof()
    return stream


def _parsed(buffer: ConsoleBuffer) -> list[tuple[str, str]]:
    return [(e.type, e.text) for e in buffer.entries(limit=100)]


async def test_lines_split_across_reads_are_whole_without_cr_or_ansi_codes() -> None:
    buffer = ConsoleBuffer()
    stream = _stream(
        f"{STAMP} [Server Notification] hel".encode(),
        b"lo\r\n\x1b[31m" + f"{STAMP} [Server Error] boom".encode() + b"\x1b[0m\n   at X",
        b".Y()\n",
    )
    await asyncio.wait_for(pump_stdout(stream, buffer), 5)
    assert _parsed(buffer) == [("Notification", "hello"), ("Error", "boom\n   at X.Y()")]
    assert buffer.entries(limit=1)[0].server_time == STAMP


async def test_an_entry_is_published_once_the_pipe_is_quiet_and_eof_flushes_a_last_line() -> None:
    buffer = ConsoleBuffer()
    stream = _stream(f"{STAMP} [Server Event] ready\n".encode(), eof=False)
    pump = asyncio.create_task(pump_stdout(stream, buffer))
    await asyncio.wait_for(buffer.wait_for_seq(0), 5)
    assert _parsed(buffer) == [("Event", "ready")]
    # Published already, so a later line without a prefix stands on its own.
    stream.feed_data(b"late text\nno newline at the end")
    stream.feed_eof()
    await asyncio.wait_for(pump, 5)
    assert _parsed(buffer)[1:] == [("raw", "late text"), ("raw", "no newline at the end")]


async def test_a_line_longer_than_the_limit_is_taken_in_pieces() -> None:
    buffer = ConsoleBuffer()
    await asyncio.wait_for(pump_stdout(_stream(b"x" * (MAX_LINE + 10) + b"\n"), buffer), 5)
    assert [len(text) for _, text in _parsed(buffer)] == [MAX_LINE, 10]


async def test_a_flood_already_in_the_pipe_lets_other_tasks_run_while_it_is_parsed() -> None:
    buffer = ConsoleBuffer()
    lines = b"".join(f"{STAMP} [Server Chat] 0 | A: line {n}\n".encode() for n in range(20_000))
    pump = asyncio.create_task(pump_stdout(_stream(lines), buffer))
    turns = 0
    while not pump.done():
        await asyncio.sleep(0)
        turns += 1
    assert buffer.last_seq == 20_000
    # About a megabyte read in 16 KiB steps: the loop was free between the steps.
    assert turns >= 20


def test_entries_are_the_newest_or_the_oldest_after_a_seq_within_the_ring() -> None:
    buffer = ConsoleBuffer(size=5)
    for n in range(1, 13):
        buffer.append("Event", f"line {n}", "stdout", None)

    def seqs(entries: list[ConsoleEntry]) -> list[int]:
        return [entry.seq for entry in entries]

    assert seqs(buffer.entries(limit=3)) == [10, 11, 12]
    assert seqs(buffer.entries(limit=50)) == [8, 9, 10, 11, 12]
    assert seqs(buffer.entries(limit=2, after_seq=8)) == [9, 10]
    # Older than the ring: from its oldest entry on.
    assert seqs(buffer.entries(limit=2, after_seq=2)) == [8, 9]
    assert buffer.entries(limit=2, after_seq=12) == []
    assert buffer.entries(limit=0) == []
