"""Errors of the schedule and hold routes, under one base class."""

from __future__ import annotations

from vintagestory_api.errors import ApiError, Conflict, NotFound, ValidationFailed, clip


class SchedulesError(ApiError):
    """Base of the schedules domain's errors; each also derives from its generic kind."""


class ScheduleNotFound(SchedulesError, NotFound):
    code = "SCHEDULE_NOT_FOUND"
    example = "schedule 'nightly-restart' does not exist"

    def __init__(self, schedule_id: str) -> None:
        super().__init__(f"schedule '{clip(schedule_id)}' does not exist")


class ScheduleExists(SchedulesError, Conflict):
    code = "SCHEDULE_EXISTS"
    example = "schedule 'nightly-restart' already exists; change it with PUT or PATCH"


class ScheduleInvalid(SchedulesError, ValidationFailed):
    """A schedule that cannot be saved; the message names the field."""

    code = "INVALID_SCHEDULE"
    example = "body.trigger.cron: expected 5 fields (minute hour day month weekday), got 4"


class NoNextOccurrence(SchedulesError, Conflict):
    code = "NO_NEXT_OCCURRENCE"
    example = "schedule 'nightly-restart' is paused or disabled: it has no next occurrence"


class NoRunInProgress(SchedulesError, Conflict):
    code = "NO_RUN_IN_PROGRESS"
    example = "schedule 'nightly-restart' has no run in progress"


class RunNotCancellable(SchedulesError, Conflict):
    code = "RUN_NOT_CANCELLABLE"
    example = "the restart of schedule 'nightly-restart' is under way; it cannot be cancelled"


class HoldInvalid(SchedulesError, ValidationFailed):
    code = "INVALID_HOLD"
    example = "body.until: must be in the future"


class HoldNotFound(SchedulesError, NotFound):
    code = "HOLD_NOT_FOUND"
    example = "hold '3f2a9c1e' does not exist (it may have expired)"

    def __init__(self, hold_id: str) -> None:
        super().__init__(f"hold '{clip(hold_id)}' does not exist (it may have expired)")
