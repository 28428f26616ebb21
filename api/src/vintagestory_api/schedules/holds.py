"""Maintenance holds: while one is active, affected runs are recorded as skipped with its
reason; they expire on their own and are kept in the schedules state file (a part of
`SchedulesService`, kept apart so the service module stays readable)."""

from __future__ import annotations

import os
from datetime import timedelta

import structlog

from .control import utc_now
from .errors import HoldInvalid, HoldNotFound
from .schemas import Hold, HoldCreate
from .store import SchedulesStore

logger = structlog.get_logger()


class HoldBook:
    _store: SchedulesStore

    def holds(self) -> list[Hold]:
        now = utc_now()
        active = [hold for hold in self._store.document.holds if hold.until > now]
        return sorted(active, key=lambda hold: hold.until)

    async def add_hold(self, request: HoldCreate, role: str) -> Hold:
        now = utc_now()
        if request.until <= now:
            raise HoldInvalid("body.until: must be in the future")
        if request.until > now + timedelta(days=366):
            raise HoldInvalid("body.until: must be within a year")
        hold = Hold(
            id=os.urandom(4).hex(),
            until=request.until,
            reason=request.reason,
            scope=request.scope,
            created_at=now,
            created_by=role,
        )
        async with self._store.lock:
            document = self._store.document
            kept = [h for h in document.holds if h.until > now]
            await self._store.save(document.model_copy(update={"holds": [*kept, hold]}))
        logger.info(
            "hold_created",
            hold_id=hold.id,
            until=hold.until.isoformat(),
            scope=hold.scope,
            role=role,
        )
        return hold

    async def delete_hold(self, hold_id: str, role: str) -> None:
        async with self._store.lock:
            document = self._store.document
            if not any(h.id == hold_id and h.until > utc_now() for h in document.holds):
                raise HoldNotFound(hold_id)
            holds = [h for h in document.holds if h.id != hold_id]
            await self._store.save(document.model_copy(update={"holds": holds}))
        logger.info("hold_deleted", hold_id=hold_id, role=role)
