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
import itertools
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import structlog

from .process import STREAM_LIMIT, GameProcess

logger = structlog.get_logger()

TYPES = ("Notification", "Event", "Chat", "Warning", "Error", "Fatal", "Debug", "Worldgen")
LINE = re.compile(
    r"^(\d{1,2}\.\d{1,2}\.\d{4} \d{2}:\d{2}:\d{2}) "
    rf"\[Server ({'|'.join(TYPES)})\] ?(.*)$"
)
ECHO = "Handling Console Command "
# The one string object of each type, kept by every entry of that type instead of a copy.
_TYPES = {name: name for name in TYPES}
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

# How long an entry waits for continuation lines once the pipe is quiet.
CONTINUATION_WAIT = 0.05
# How long a command waits for its echo before the next may be written.
ECHO_WAIT = 2.0
# Replies are the entries that follow the echo within this window.
REPLY_WINDOW = 0.5
BUFFER_SIZE = 10_000
SUBSCRIBER_QUEUE = 1_000
# A pipe is read a buffered chunk at a time: one await per chunk instead of one await and one
# timer per line is what lets a flooding server's lines be parsed as fast as they come.
READ_SIZE = 16 * 1024
# A line longer than this (more than any crash report) is taken in pieces of this size.
MAX_LINE = STREAM_LIMIT

Stream = Literal["stdout", "stderr"]
LineHandler = Callable[[str, str], None]


@dataclass(slots=True)
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
        # Set and dropped on the next entry: each waiter holds the event of its moment. Made
        # only when someone waits, so a flood does not build an Event per entry.
        self._changed: asyncio.Event | None = None

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

    def append(
        self,
        entry_type: str,
        text: str,
        stream: Stream,
        server_time: str | None,
        at: datetime | None = None,
    ) -> None:
        """Add an entry read at `at` (default: now)."""
        entry = ConsoleEntry(
            self._next_seq, at or datetime.now(UTC), entry_type, text, stream, server_time
        )
        self._next_seq += 1
        self._entries.append(entry)
        for subscription in self._subscribers:
            subscription.put(entry)
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def wait_for_seq(self, after: int) -> None:
        """Wait until an entry after `after` exists (callers bound it with asyncio.timeout)."""
        while self.last_seq <= after:
            if self._changed is None:
                self._changed = asyncio.Event()
            await self._changed.wait()

    def entries(self, *, limit: int, after_seq: int | None = None) -> list[ConsoleEntry]:
        """The newest `limit` entries (after `after_seq` when given: the oldest `limit` after
        it), oldest first."""
        if not limit or not self._entries:
            return []
        if after_seq is not None:
            # Sequence numbers are consecutive in the ring, so the first one places the rest.
            start = max(0, after_seq - self._entries[0].seq + 1)
            return list(itertools.islice(self._entries, start, start + limit))
        newest = list(itertools.islice(reversed(self._entries), limit))
        newest.reverse()
        return newest

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


def _decode(raw: bytes) -> list[str]:
    """Newline-separated bytes as lines: UTF-8 (bad bytes replaced), no CR, no ANSI codes."""
    text = raw.decode("utf-8", "replace")
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    lines = text.split("\n")
    return [line.rstrip("\r") for line in lines] if "\r" in text else lines


class LineReader:
    """Whole lines from a pipe, as many as one read of its buffer completes."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self._stream = stream
        self._partial = b""

    async def lines(self) -> list[str] | None:
        """The lines the next read completes; None at EOF, after a last unterminated line.

        Safe to cancel: a partial line is kept here, unread data stays in the stream.
        """
        while True:
            chunk = await self._stream.read(READ_SIZE)
            if not chunk:
                rest, self._partial = self._partial, b""
                return _decode(rest) if rest else None
            data = self._partial + chunk if self._partial else chunk
            cut = data.rfind(b"\n")
            if cut >= 0:
                self._partial = data[cut + 1 :]
                return _decode(data[:cut])
            if len(data) >= MAX_LINE:
                self._partial = b""
                return _decode(data)
            self._partial = data


async def pump_stdout(stream: asyncio.StreamReader, buffer: ConsoleBuffer) -> None:
    """Read stdout to EOF; continuation lines join the entry before them."""
    reader = LineReader(stream)
    # The entry still open for continuation lines: its type, lines, server time and read time.
    kind: str | None = None
    parts: list[str] = []
    stamp: str | None = None
    read_at = datetime.now(UTC)
    while True:
        if kind is not None:
            # A timeout costs a timer, not a task; cancelling the read keeps buffered data.
            try:
                async with asyncio.timeout(CONTINUATION_WAIT):
                    lines = await reader.lines()
            except TimeoutError:
                buffer.append(kind, "\n".join(parts), "stdout", stamp, read_at)
                kind = None
                continue
        else:
            lines = await reader.lines()
        if lines is None:
            break
        # Every line of one read arrived at the same moment.
        now = datetime.now(UTC)
        for text in lines:
            match = LINE.match(text)
            if match is None:
                if kind is not None:
                    parts.append(text)
                else:
                    buffer.append("raw", text, "stdout", None, now)
                continue
            if kind is not None:
                buffer.append(kind, "\n".join(parts), "stdout", stamp, read_at)
            server_time, kind, message = match.groups()
            kind = _TYPES[kind]
            # The entries of one second share one string: a full ring holds 10,000 of them.
            if server_time != stamp:
                stamp = server_time
            parts = [message]
            read_at = now
            buffer.handle_line(kind, message)
        # A read from a full buffer returns without suspending, so a flood would hold the
        # event loop for as long as it lasts: let requests in between reads.
        await asyncio.sleep(0)
    if kind is not None:
        buffer.append(kind, "\n".join(parts), "stdout", stamp, read_at)


async def pump_stderr(stream: asyncio.StreamReader, buffer: ConsoleBuffer) -> None:
    """Read stderr to EOF; only the .NET host and runtime write there, one entry a line."""
    reader = LineReader(stream)
    while (lines := await reader.lines()) is not None:
        now = datetime.now(UTC)
        for text in lines:
            buffer.append("stderr", text, "stderr", None, now)
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
