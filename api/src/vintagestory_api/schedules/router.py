"""`/schedules` and `/holds`: admin schedules (monitor reads), their occurrences, the
timeline, export and import; maintenance holds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, status

from vintagestory_api.auth.deps import AdminDep, RoleDep
from vintagestory_api.auth.errors import Forbidden
from vintagestory_api.errors import ApiError, StateWriteFailed, ValidationFailed, error_responses
from vintagestory_api.kit.envelope import ApiResponse, ok

from .deps import SchedulesDep
from .errors import (
    HoldInvalid,
    HoldNotFound,
    NoNextOccurrence,
    NoRunInProgress,
    RunNotCancellable,
    ScheduleExists,
    ScheduleInvalid,
    ScheduleNotFound,
)
from .schemas import (
    ExportDocument,
    Hold,
    HoldCreate,
    HoldDeleted,
    HoldList,
    ImportResult,
    PostponeRequest,
    Schedule,
    ScheduleCreate,
    ScheduleDefinition,
    ScheduleDeleted,
    ScheduleList,
    ScheduleOrTemplate,
    ScheduleUpdate,
    Timeline,
)
from .templates import expand

router = APIRouter(prefix="/schedules", tags=["schedules"])
holds_router = APIRouter(prefix="/holds", tags=["schedules"])

ScheduleIdPath = Annotated[
    str,
    Path(
        description="The schedule's id",
        examples=["nightly-restart"],
        max_length=64,
        pattern=r"^[a-z0-9][a-z0-9-]*$",
    ),
]
_DEFINITION_ERRORS = (ScheduleInvalid, ValidationFailed)


def _saving(*errors: type[ApiError]) -> dict[int | str, dict[str, Any]]:
    """The errors of an admin route that writes the state file, besides its own `errors`."""
    return error_responses(Forbidden, *errors, StateWriteFailed)


@router.get("", summary="Every schedule, with its next actions, current run and warnings")
async def list_schedules(service: SchedulesDep, _: RoleDep) -> ApiResponse[ScheduleList]:
    return ok(ScheduleList(schedules=service.list_schedules()))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a schedule, or expand a template into one",
    description="The answer is the schedule in full (a template's expansion included), its "
    "next action times, and warnings: DST, too frequent, and disruptive schedules within 10 "
    "minutes of each other in the next 7 days.",
    responses=_saving(*_DEFINITION_ERRORS, ScheduleExists),
)
async def create_schedule(
    service: SchedulesDep, _: AdminDep, body: Annotated[ScheduleOrTemplate, Body()]
) -> ApiResponse[Schedule]:
    schedule = body if isinstance(body, ScheduleCreate) else expand(body)
    return ok(await service.create(schedule))


@router.get("/timeline", summary="Everything that will happen, in time order")
async def timeline(
    service: SchedulesDep,
    _: RoleDep,
    hours: Annotated[int, Query(ge=1, le=744, description="How far ahead")] = 168,
) -> ApiResponse[Timeline]:
    return ok(service.timeline(hours))


@router.get(
    "/export",
    summary="Every schedule as a versioned document (for PUT /import; admin only)",
    responses=error_responses(Forbidden),
)
async def export_schedules(service: SchedulesDep, _: AdminDep) -> ApiResponse[ExportDocument]:
    return ok(ExportDocument(exported_at=datetime.now(UTC), schedules=service.export()))


@router.put(
    "/import",
    summary="Make the schedules exactly those of a document: all valid, or nothing changes",
    description="Schedules missing from the document are deleted. With `dry_run=true` "
    "nothing changes; the answer says what would.",
    responses=_saving(*_DEFINITION_ERRORS),
)
async def import_schedules(
    service: SchedulesDep,
    _: AdminDep,
    document: ExportDocument,
    dry_run: Annotated[bool, Query(description="Only check and report")] = False,
) -> ApiResponse[ImportResult]:
    return ok(await service.import_all(document.schedules, dry_run=dry_run))


@router.get("/{schedule_id}", summary="One schedule", responses=error_responses(ScheduleNotFound))
async def get_schedule(
    schedule_id: ScheduleIdPath, service: SchedulesDep, _: RoleDep
) -> ApiResponse[Schedule]:
    return ok(service.get(schedule_id))


@router.put(
    "/{schedule_id}",
    summary="Replace a schedule",
    responses=_saving(*_DEFINITION_ERRORS, ScheduleNotFound),
)
async def replace_schedule(
    schedule_id: ScheduleIdPath, service: SchedulesDep, _: AdminDep, body: ScheduleDefinition
) -> ApiResponse[Schedule]:
    schedule = ScheduleCreate.model_validate({**body.model_dump(), "id": schedule_id})
    return ok(await service.replace(schedule))


@router.patch(
    "/{schedule_id}",
    summary="Change some fields of a schedule",
    responses=_saving(*_DEFINITION_ERRORS, ScheduleNotFound),
)
async def patch_schedule(
    schedule_id: ScheduleIdPath, service: SchedulesDep, _: AdminDep, body: ScheduleUpdate
) -> ApiResponse[Schedule]:
    changes = body.model_dump(mode="json", exclude_unset=True)
    return ok(await service.patch(schedule_id, changes))


@router.delete(
    "/{schedule_id}",
    summary="Delete a schedule (a run in progress finishes)",
    responses=_saving(ScheduleNotFound),
)
async def delete_schedule(
    schedule_id: ScheduleIdPath, service: SchedulesDep, _: AdminDep
) -> ApiResponse[ScheduleDeleted]:
    await service.delete(schedule_id)
    return ok(ScheduleDeleted(id=schedule_id))


@router.post(
    "/{schedule_id}/skip-next",
    summary="Skip the next occurrence only (recorded as skipped, by your role)",
    responses=_saving(ScheduleNotFound, NoNextOccurrence),
)
async def skip_next(
    schedule_id: ScheduleIdPath, service: SchedulesDep, role: AdminDep
) -> ApiResponse[Schedule]:
    return ok(await service.skip_next(schedule_id, str(role)))


@router.post(
    "/{schedule_id}/postpone",
    summary="Move the next occurrence only, by some minutes",
    responses=_saving(ScheduleNotFound, NoNextOccurrence, ValidationFailed),
)
async def postpone(
    schedule_id: ScheduleIdPath, service: SchedulesDep, role: AdminDep, body: PostponeRequest
) -> ApiResponse[Schedule]:
    return ok(await service.postpone(schedule_id, body.minutes, str(role)))


@router.post(
    "/{schedule_id}/cancel",
    summary="Cancel the run in progress (its countdown): announced, recorded as cancelled",
    responses=error_responses(Forbidden, ScheduleNotFound, NoRunInProgress, RunNotCancellable),
)
async def cancel(
    schedule_id: ScheduleIdPath, service: SchedulesDep, role: AdminDep
) -> ApiResponse[Schedule]:
    return ok(await service.cancel(schedule_id, str(role)))


@holds_router.get("", summary="Active maintenance holds")
async def list_holds(service: SchedulesDep, _: RoleDep) -> ApiResponse[HoldList]:
    return ok(HoldList(holds=service.holds()))


@holds_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Hold schedules until a moment: affected runs are skipped with the reason",
    responses=_saving(HoldInvalid, ValidationFailed),
)
async def create_hold(service: SchedulesDep, role: AdminDep, body: HoldCreate) -> ApiResponse[Hold]:
    return ok(await service.add_hold(body, str(role)))


@holds_router.delete(
    "/{hold_id}",
    summary="End a hold now",
    responses=_saving(HoldNotFound),
)
async def delete_hold(
    service: SchedulesDep,
    role: AdminDep,
    hold_id: Annotated[str, Path(max_length=64, description="The hold's id")],
) -> ApiResponse[HoldDeleted]:
    await service.delete_hold(hold_id, str(role))
    return ok(HoldDeleted(id=hold_id))
