"""Route dependencies of the scheduler domain."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from vintagestory_api.kit.envelope import ApiResponse, JsonBodyCache

from .control import JobControl
from .schemas import JobList
from .service import SchedulerService


async def get_scheduler(request: Request) -> SchedulerService:
    scheduler: SchedulerService = request.app.state.scheduler
    return scheduler


async def get_job_control(request: Request) -> JobControl:
    control: JobControl = request.app.state.job_control
    return control


async def get_job_list_body(request: Request) -> JsonBodyCache[ApiResponse[JobList]]:
    cache: JsonBodyCache[ApiResponse[JobList]] = request.app.state.job_list_body
    return cache


SchedulerDep = Annotated[SchedulerService, Depends(get_scheduler)]
JobControlDep = Annotated[JobControl, Depends(get_job_control)]
JobListBodyDep = Annotated[JsonBodyCache[ApiResponse[JobList]], Depends(get_job_list_body)]
