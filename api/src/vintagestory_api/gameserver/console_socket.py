"""The console WebSocket: the last N entries, then every new one as it is read, to one client.

Every message is a JSON object told apart by `kind`: `entry` (the fields of a REST console
entry), one `backlog_end` once the last N have been sent, and `dropped` when this client read
too slowly and its bounded queue lost entries (the console reader never waits for a client).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Annotated

import structlog
from pydantic import Field, TypeAdapter, ValidationError
from starlette.datastructures import QueryParams
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketDisconnected

from vintagestory_api.errors import ValidationFailed, clip, validation_message

from .console import BUFFER_SIZE, ConsoleEntry, Subscription
from .schemas import (
    ConsoleBacklogEnd,
    ConsoleDropped,
    ConsoleEntryMessage,
    ConsoleLine,
    ConsoleLines,
)
from .service import GameServerService

logger = structlog.get_logger()

BACKLOG_DEFAULT = 100
QUERY_PARAMS = ("last", "token")
# 1001 "going away": the API is shutting down.
GOING_AWAY = 1001
_BACKLOG = TypeAdapter(Annotated[int, Field(ge=0, le=BUFFER_SIZE)])

Send = Callable[[str], Awaitable[None]]


def backlog_size(query: QueryParams) -> int:
    """`?last=`, validated as a route's query would be; raises ValidationFailed naming it."""
    unknown = sorted(set(query) - set(QUERY_PARAMS))
    if unknown:
        raise ValidationFailed(
            f"query.{clip(unknown[0])}: unknown query parameter (this route takes: "
            f"{', '.join(QUERY_PARAMS)})"
        )
    raw = query.get("last")
    if raw is None:
        return BACKLOG_DEFAULT
    try:
        return _BACKLOG.validate_strings(raw)
    except ValidationError as exc:
        problems = [{**error, "loc": ("query", "last", *error["loc"])} for error in exc.errors()]
        raise ValidationFailed(validation_message(problems)) from None


def entry_message(entry: ConsoleEntry | ConsoleLine) -> str:
    if isinstance(entry, ConsoleLine):
        return ConsoleEntryMessage(**entry.model_dump()).model_dump_json()
    if entry.message is None:
        entry.message = ConsoleEntryMessage.model_validate(
            entry, from_attributes=True
        ).model_dump_json()
    return entry.message


async def feed(send: Send, subscription: Subscription, backlog: ConsoleLines) -> int:
    """Send `backlog`, then what `subscription` receives, until it is closed; returns how many
    entries were dropped on the way.

    The subscription must have been taken before the backlog was read, so that nothing falls
    between them; an entry both hold (seq up to the backlog's last_seq) is sent once.
    """
    for line in backlog.entries:
        await send(entry_message(line))
    after = backlog.last_seq
    await send(ConsoleBacklogEnd(last_seq=after).model_dump_json())
    lost = 0
    while True:
        entries, dropped = await subscription.get()
        if dropped:
            # Before what follows: the dropped entries are older than every one still queued.
            lost += dropped
            await send(ConsoleDropped(count=dropped).model_dump_json())
        for entry in entries:
            if entry.seq > after:
                await send(entry_message(entry))
        if subscription.closed:
            return lost


async def serve(websocket: WebSocket, service: GameServerService, last: int) -> None:
    """Stream the console to an accepted, authenticated `websocket` until either side ends."""
    subscription = service.subscribe()
    backlog = service.console(limit=last)
    client_left = asyncio.Event()
    watcher = asyncio.create_task(_watch(websocket, service, subscription, client_left))
    log = logger.bind(client=websocket.client.host if websocket.client else None)
    log.info("console_socket_opened", subscribers=service.subscriber_count)
    lost = 0
    try:
        lost = await feed(websocket.send_text, subscription, backlog)
    except (WebSocketDisconnect, WebSocketDisconnected):
        client_left.set()
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        service.unsubscribe(subscription)
    if not client_left.is_set():
        # Closed by the API's shutdown (uvicorn itself closes open sockets with 1012 before the
        # lifespan ends; this covers a server that ends the lifespan first).
        with contextlib.suppress(WebSocketDisconnect, WebSocketDisconnected):
            await websocket.close(code=GOING_AWAY, reason="the API is shutting down")
    log.info("console_socket_closed", dropped=lost, client_left=client_left.is_set())


async def _watch(
    websocket: WebSocket,
    service: GameServerService,
    subscription: Subscription,
    client_left: asyncio.Event,
) -> None:
    """Notice the client leaving while `feed` waits for entries; what it sends is ignored (the
    socket is read-only: commands go to POST /server/console/command)."""
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass
    client_left.set()
    service.unsubscribe(subscription)
