"""The console WebSocket's fan-out, driven directly: a real console buffer and subscription, a
client that stops reading, and the API shutting down under an open socket."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from starlette.types import Message
from starlette.websockets import WebSocket

from vintagestory_api.gameserver.console import ConsoleBuffer
from vintagestory_api.gameserver.console_socket import GOING_AWAY, feed, serve
from vintagestory_api.gameserver.exits import Timings
from vintagestory_api.gameserver.launch import LaunchConfig
from vintagestory_api.gameserver.schemas import ConsoleLine, ConsoleLines
from vintagestory_api.gameserver.service import GameServerService

WAIT = 5.0


def _add(buffer: ConsoleBuffer, *texts: str) -> None:
    for text in texts:
        buffer.append("Notification", text, "stdout", "1.1.2026 10:00:00")


def _backlog(buffer: ConsoleBuffer) -> ConsoleLines:
    entries = buffer.entries(limit=100)
    return ConsoleLines(
        entries=[ConsoleLine.model_validate(e, from_attributes=True) for e in entries],
        last_seq=buffer.last_seq,
    )


class Client:
    """Records what `feed` sends; `hold()` makes the next send wait, as a client that stops
    reading (its TCP window full) makes the server's send wait."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.waiting = asyncio.Event()
        self._go = asyncio.Event()
        self._go.set()
        self._arrived = asyncio.Event()

    def hold(self) -> None:
        self._go.clear()

    def release(self) -> None:
        self._go.set()

    async def send(self, text: str) -> None:
        if not self._go.is_set():
            self.waiting.set()
            await self._go.wait()
        self.messages.append(json.loads(text))
        self._arrived.set()

    async def received(self, count: int) -> None:
        async with asyncio.timeout(WAIT):
            while len(self.messages) < count:
                self._arrived.clear()
                await self._arrived.wait()

    def kinds(self) -> list[Any]:
        return [m.get("text", m["kind"]) for m in self.messages]


async def test_a_slow_client_loses_its_oldest_entries_and_is_told_how_many() -> None:
    buffer = ConsoleBuffer()
    subscription = buffer.subscribe(size=3)
    client = Client()
    task = asyncio.create_task(feed(client.send, subscription, _backlog(buffer)))
    await client.received(1)
    client.hold()
    _add(buffer, "first")
    async with asyncio.timeout(WAIT):
        await client.waiting.wait()
    # The reader goes on while the client's send waits: ten more, of which its queue keeps 3.
    _add(buffer, *(f"line {n}" for n in range(10)))
    client.release()
    await client.received(6)
    buffer.unsubscribe(subscription)
    async with asyncio.timeout(WAIT):
        lost = await task
    assert client.kinds() == ["backlog_end", "first", "dropped", "line 7", "line 8", "line 9"]
    assert client.messages[2] == {"kind": "dropped", "count": 7}
    assert lost == 7


async def test_an_entry_in_both_the_backlog_and_the_subscription_is_sent_once() -> None:
    buffer = ConsoleBuffer()
    _add(buffer, "old")
    subscription = buffer.subscribe()
    _add(buffer, "in both")  # queued for the subscriber and in the buffer the backlog reads
    client = Client()
    task = asyncio.create_task(feed(client.send, subscription, _backlog(buffer)))
    await client.received(3)
    _add(buffer, "new")
    await client.received(4)
    buffer.unsubscribe(subscription)
    async with asyncio.timeout(WAIT):
        await task
    assert client.kinds() == ["old", "in both", "backlog_end", "new"]
    assert [m["seq"] for m in client.messages if m["kind"] == "entry"] == [1, 2, 3]


async def test_the_service_closing_under_an_open_socket_closes_it_going_away(
    tmp_path: Path,
) -> None:
    # uvicorn closes sockets itself before the lifespan ends (see test_console_ws); this is the
    # other order, spoken to in plain ASGI messages.
    service = GameServerService(
        LaunchConfig(server_dir=tmp_path / "server", data_path=tmp_path / "data"),
        lambda: Timings(
            start_timeout=5, stop_timeout=5, kill_timeout=5, backoff=1, auto_restart=False
        ),
    )
    incoming: asyncio.Queue[Message] = asyncio.Queue()
    incoming.put_nowait({"type": "websocket.connect"})
    sent: list[Message] = []
    some_sent = asyncio.Event()

    async def send(message: Message) -> None:
        sent.append(message)
        some_sent.set()

    scope = {"type": "websocket", "path": "/ws", "headers": [], "query_string": b""}
    websocket = WebSocket(scope, incoming.get, send)
    await websocket.accept()
    task = asyncio.create_task(serve(websocket, service, last=0))
    async with asyncio.timeout(WAIT):
        while len(sent) < 2:  # the accept and backlog_end
            some_sent.clear()
            await some_sent.wait()
    assert service.subscriber_count == 1
    await service.close()
    async with asyncio.timeout(WAIT):
        await task
    assert sent[-1] == {
        "type": "websocket.close",
        "code": GOING_AWAY,
        "reason": "the API is shutting down",
    }
    assert service.subscriber_count == 0
