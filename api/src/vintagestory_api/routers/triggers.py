"""Schedule previews: the next fire times and warnings of a schedule, before committing to it."""

from __future__ import annotations

from fastapi import APIRouter

from vintagestory_api.deps import SchedulerDep
from vintagestory_api.models.envelope import ApiResponse, error_responses, ok
from vintagestory_api.models.jobs import TriggerPreview, TriggerPreviewRequest
from vintagestory_api.services.previews import preview_schedule

router = APIRouter(prefix="/triggers", tags=["triggers"])


@router.post(
    "/preview",
    summary="Preview a schedule: normalized form, description, next fire times, warnings",
    responses=error_responses(422),
)
async def preview_trigger(
    request: TriggerPreviewRequest, scheduler: SchedulerDep
) -> ApiResponse[TriggerPreview]:
    preview = preview_schedule(
        interval_seconds=request.interval_seconds,
        cron=request.cron,
        timezone=request.timezone,
        count=request.count,
        start=request.start,
        default_tz=scheduler.default_timezone,
    )
    return ok(preview)
