"""Route dependencies of the schedules domain."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from .service import SchedulesService


async def get_schedules(request: Request) -> SchedulesService:
    service: SchedulesService = request.app.state.schedules
    return service


SchedulesDep = Annotated[SchedulesService, Depends(get_schedules)]
