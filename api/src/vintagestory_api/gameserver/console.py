"""The game server's console: one reader per pipe, a ring of parsed entries, live subscribers,
and the one stdin writer.

A log line is `d.M.yyyy HH:mm:ss [Server <Type>] <message>`; a multi-line message (a /stats
block, a stack trace) prints its first line with that prefix and the rest raw, so a line
without the prefix belongs to the entry before it. An entry is therefore published when the
next prefixed line arrives or the pipe stays quiet for a moment. Line handlers (ready line,
players, echoes) see every prefixed line at once, without that delay.

The server's stdin reader is fragile: two commands in one read become one unknown command,
silently dropped. So the writer writes exactly one `/cmd args\\n` per write and waits for the
server's `Handling Console Command` echo (or a short gap) before the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import structlog

from .process import GameProcess

logger = structlog.get_logger()

LINE = re.compile(
    r"^(\d{1,2}\.\d{1,2}\.\d{4} \d{2}:\d{2}:\d{2}) "
    r"\[Server (Notification|Event|Chat|Warning|Error|Fatal|Debug|Worldgen)\] ?(.*)$"
)
ECHO = "Handling Console Command "
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

# How long an entry waits for continuation lines once the pipe is quiet.
CONTINUATION_WAIT = 0.05
# How long a command waits for its echo before the next may be written.
ECHO_WAIT = 2.0
# Replies are the entries that follow the echo within this window.
REPLY_WINDOW = 0.5
BUFFER_SIZE = 10_000
SUBSCRIBER_QUEUE = 1_000

Stream = Literal["stdout", "stderr"]
LineHandler = Callable[[str, str], None]


@dataclass
class ConsoleEntry:
    seq: int
    time: datetime
    type: str
    text: str
    stream: Stream = "stdout"
    server_time: str | None = None
    # The console WebSocket's message for this entry: encoded by the first socket that sends
    # it, reused by every other (20 clients would otherwise encode the same entry 20 times).
    message: str | None = field(default=None, repr=False, compare=False)


# eq=False: a subscription is one reader, kept in a set by identity (a dataclass's generated
# __eq__ would make it unhashable).
@dataclass(eq=False)
class Subscription:
    """One live reader's bounded queue; when full, the oldest entries go and are counted."""

    size: int
    entries: deque[ConsoleEntry] = field(init=False)
    dropped: int = 0
    closed: bool = False
    _event: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.entries = deque(maxlen=self.size)

    def put(self, entry: ConsoleEntry) -> None:
        if len(self.entries) == self.size:
            self.dropped += 1
        self.entries.append(entry)
        self._event.set()

    def close(self) -> None:
        self.closed = True
        self._event.set()

    async def get(self) -> tuple[list[ConsoleEntry], int]:
        """The queued entries and how many were dropped since the last call; waits for one."""
        while not self.entries and not self.closed:
            self._event.clear()
            await self._event.wait()
        batch = list(self.entries)
        self.entries.clear()
        dropped, self.dropped = self.dropped, 0
        return batch, dropped


class ConsoleBuffer:
    """The newest entries of every run, numbered by a sequence that never restarts."""

    def __init__(self, size: int = BUFFER_SIZE) -> None:
        self._entries: deque[ConsoleEntry] = deque(maxlen=size)
        self._next_seq = 1
        self._subscribers: set[Subscription] = set()
        self._handlers: list[LineHandler] = []
        # Set and replaced on every entry: each waiter holds the event of its moment.
        self._changed = asyncio.Event()

    @property
    def last_seq(self) -> int:
        return self._next_seq - 1

    def add_handler(self, handler: LineHandler) -> None:
        """`handler(type, text)` for every prefixed stdout line, as soon as it is read."""
        self._handlers.append(handler)

    def handle_line(self, type_: str, text: str) -> None:
        for handler in self._handlers:
            try:
                handler(type_, text)
            except Exception:
                logger.exception("console_handler_failed", handler=repr(handler))

    def append(self, entry_type: str, text: str, stream: Stream, server_time: str | None) -> None:
        entry = ConsoleEntry(
            seq=self._next_seq,
            time=datetime.now(UTC),
            type=entry_type,
            text=text,
            stream=stream,
            server_time=server_time,
        )
        self._next_seq += 1
        self._entries.append(entry)
        for subscription in self._subscribers:
            subscription.put(entry)
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for_seq(self, after: int) -> None:
        """Wait until an entry after `after` exists (callers bound it with asyncio.timeout)."""
        while self.last_seq <= after:
            await self._changed.wait()

    def entries(self, *, limit: int, after_seq: int | None = None) -> list[ConsoleEntry]:
        """The newest `limit` entries (after `after_seq` when given), oldest first."""
        if after_seq is not None:
            chosen = [entry for entry in self._entries if entry.seq > after_seq]
            return chosen[:limit]
        return list(self._entries)[-limit:] if limit else []

    def tail(self, count: int) -> list[str]:
        return [entry.text for entry in list(self._entries)[-count:]]

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def subscribe(self, size: int = SUBSCRIBER_QUEUE) -> Subscription:
        subscription = Subscription(size)
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)
        subscription.close()

    def close_subscribers(self) -> None:
        for subscription in list(self._subscribers):
            self.unsubscribe(subscription)


def _decode(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace").rstrip("\r\n")
    return _ANSI.sub("", text) if "\x1b" in text else text


async def _readline(stream: asyncio.StreamReader) -> bytes:
    try:
        return await stream.readline()
    except ValueError:
        # A line longer than the stream limit: take what is buffered as one line.
        return await stream.read(64 * 1024)


async def pump_stdout(stream: asyncio.StreamReader, buffer: ConsoleBuffer) -> None:
    """Read stdout to EOF; continuation lines join the entry before them."""
    pending: tuple[str, list[str], str | None] | None = None

    def publish() -> None:
        nonlocal pending
        if pending is not None:
            entry_type, lines, server_time = pending
            buffer.append(entry_type, "\n".join(lines), "stdout", server_time)
            pending = None

    while True:
        if pending is not None:
            # A timeout costs a timer, not a task; cancelling readline keeps buffered data.
            try:
                async with asyncio.timeout(CONTINUATION_WAIT):
                    raw = await _readline(stream)
            except TimeoutError:
                publish()
                continue
        else:
            raw = await _readline(stream)
        if not raw:
            break
        text = _decode(raw)
        match = LINE.match(text)
        if match is None:
            if pending is not None:
                pending[1].append(text)
            else:
                buffer.append("raw", text, "stdout", None)
            continue
        publish()
        server_time, entry_type, message = match.groups()
        pending = (entry_type, [message], server_time)
        buffer.handle_line(entry_type, message)
    publish()


async def pump_stderr(stream: asyncio.StreamReader, buffer: ConsoleBuffer) -> None:
    """Read stderr to EOF; only the .NET host and runtime write there, one entry a line."""
    while raw := await _readline(stream):
        text = _decode(raw)
        buffer.append("stderr", text, "stderr", None)
        buffer.handle_line("stderr", text)


class CommandWriter:
    """The only writer of the server's stdin: one command per write, one at a time."""

    def __init__(self, process: GameProcess, buffer: ConsoleBuffer) -> None:
        self._process = process
        self._buffer = buffer
        self._lock = asyncio.Lock()
        self._echoes = 0
        self._echoed = asyncio.Event()

    def on_line(self, entry_type: str, text: str) -> None:
        """Fed every prefixed line of this process by its supervisor."""
        if entry_type == "Notification" and text.startswith(ECHO):
            self._echoes += 1
            self._echoed.set()

    async def send(self, line: str) -> tuple[int, bool]:
        """Write `line`; returns the last seq before it and whether its echo came."""
        async with self._lock:
            before_echoes = self._echoes
            before_seq = self._buffer.last_seq
            self._echoed.clear()
            await self._process.write((line + "\n").encode("utf-8"))
            try:
                async with asyncio.timeout(ECHO_WAIT):
                    while self._echoes == before_echoes:
                        await self._echoed.wait()
                        self._echoed.clear()
            except TimeoutError:
                # No echo (the server is still starting, or busy): the wait itself was the gap
                # that keeps the next write out of the same read.
                return before_seq, False
            return before_seq, True

    async def request(self, line: str, *, wait_for: str | None = None) -> list[ConsoleEntry]:
        """Send `line`; the echo and the entries after it within the reply window (or, with
        `wait_for`, until an entry containing that text, up to a longer window)."""
        before, echoed = await self.send(line)
        buffer = self._buffer
        deadline = time.monotonic() + (2.0 if wait_for else REPLY_WINDOW)
        while (remaining := deadline - time.monotonic()) > 0:
            entries = buffer.entries(limit=1000, after_seq=before)
            if wait_for and any(wait_for in entry.text for entry in entries):
                break
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await buffer.wait_for_seq(buffer.last_seq)
        entries = buffer.entries(limit=1000, after_seq=before)
        if echoed:
            # Start at this command's echo: an entry still open when it was written (the
            # reply to the one before) is published after it, but is not part of its reply.
            echo = (ECHO + line).rstrip()
            for index, entry in enumerate(entries):
                if entry.text.rstrip() == echo:
                    return entries[index:]
        return entries
