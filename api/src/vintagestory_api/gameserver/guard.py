"""Who may change the game server's lifecycle now: the action in progress and the holder.

An action (a start, stop or restart) runs one at a time. A holder is another domain's work (a
backup, a restore, a version switch) that no lifecycle action may overlap; the holder's own
starts and stops, passing its name, go ahead.
"""

from __future__ import annotations

import asyncio

from .errors import LifecycleInProgress


class LifecycleGuard:
    def __init__(self) -> None:
        self.action: str | None = None
        self.held_by: str | None = None
        self._released = asyncio.Event()

    @property
    def busy(self) -> bool:
        return self.action is not None or self.held_by is not None

    def check(self, holder: str | None = None) -> None:
        """LifecycleInProgress (409 naming who) unless `holder` may act now."""
        if self.action is not None:
            raise LifecycleInProgress(
                f"the game server is busy: a {self.action} is in progress", holder=self.action
            )
        if self.held_by is not None and self.held_by != holder:
            raise LifecycleInProgress(
                f"the game server is busy: {self.held_by} holds it", holder=self.held_by
            )

    def hold(self, holder: str) -> None:
        self.check()
        self.held_by = holder
        self._released.clear()

    def release(self, holder: str) -> None:
        if self.held_by == holder:
            self.held_by = None
            self._released.set()

    def check_holder(self, holder: str) -> None:
        """For calls only the holder may make: a caller without the hold is a bug, not a 409."""
        if self.held_by != holder:
            raise RuntimeError(f"{holder} does not hold the game server's lifecycle")

    async def wait_released(self) -> None:
        while self.held_by is not None:
            await self._released.wait()
