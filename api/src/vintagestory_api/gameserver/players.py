"""Who is online: joins, leaves and removals from the log, corrected by `/stats compact` polls.

Event tracking is immediate but drifts (a missed or localized line, a client still
connecting), so the poll wins whenever the two disagree.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from datetime import UTC, datetime

from .console import CommandWriter

JOIN = re.compile(r"^(\S+) (\S+) joins\.$")
LEAVE = re.compile(r"^Player (\S+) left\.$")
REMOVED = re.compile(r"^Player (\S+) got removed\. Reason: (.*)$")
STATS_PLAYERS = re.compile(r"Players online: (\d+) / (\d+)(?: \(([^)]*)\))?")


class PlayerTracker:
    def __init__(self) -> None:
        self._online: dict[str, datetime] = {}
        self.max_clients: int | None = None
        self.polled_at: datetime | None = None

    def online(self) -> dict[str, datetime]:
        return dict(self._online)

    @property
    def count(self) -> int:
        return len(self._online)

    def clear(self) -> None:
        self._online.clear()

    def on_line(self, entry_type: str, text: str) -> None:
        if entry_type != "Event":
            return
        if match := JOIN.match(text):
            self._online.setdefault(match.group(1), datetime.now(UTC))
        elif (match := LEAVE.match(text)) or (match := REMOVED.match(text)):
            self._online.pop(match.group(1), None)

    def reconcile(self, stats_line: str) -> bool:
        """Apply a `/stats compact` line; False when it holds no player count."""
        match = STATS_PLAYERS.search(stats_line)
        if match is None:
            return False
        count, max_clients, names = int(match.group(1)), int(match.group(2)), match.group(3)
        self.max_clients = max_clients
        self.polled_at = datetime.now(UTC)
        if count == 0:
            self._online.clear()
        elif names is not None:
            polled = {name.strip() for name in names.split(",") if name.strip()}
            now = datetime.now(UTC)
            self._online = {name: self._online.get(name, now) for name in sorted(polled)}
        # Twenty or more players: the line has the count only, so the tracked names stay.
        return True


async def poll_players(
    writer: CommandWriter, tracker: PlayerTracker, exited: asyncio.Event, seconds: float
) -> None:
    """`/stats compact` now (just after ready) and every `seconds` until the process exits."""
    while not exited.is_set():
        try:
            reply = await writer.request("/stats compact", wait_for="Players online:")
        except ConnectionError:
            return
        for entry in reply:
            if tracker.reconcile(entry.text):
                break
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await exited.wait()
