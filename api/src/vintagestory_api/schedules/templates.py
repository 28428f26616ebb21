"""Templates: the common schedules in one call, expanded to the full schedule they stand for."""

from __future__ import annotations

from .schemas import ScheduleCreate, TemplateRequest


def expand(request: TemplateRequest) -> ScheduleCreate:
    """`nightly-restart`: an announcement, a verified backup, then a restart at `at` with a
    15-minute countdown, every day."""
    hour, minute = (int(part) for part in request.at.split(":"))
    zone = f" ({request.timezone})" if request.timezone else ""
    trigger: dict[str, object] = {"cron": f"{minute} {hour} * * *"}
    if request.timezone is not None:
        trigger["timezone"] = request.timezone
    return ScheduleCreate.model_validate(
        {
            "id": request.id or request.template,
            "name": request.name or f"Nightly restart at {request.at}{zone}",
            "trigger": trigger,
            "steps": [
                {
                    "action": "announce",
                    "message": f"Nightly maintenance: a backup, then a restart at {request.at}",
                    "skip_if_server_stopped": True,
                },
                {"action": "backup", "on_failure": "continue"},
                {
                    "action": "restart",
                    "warn_before": [900, 300, 60, 10],
                    "message": "Server restarts in {remaining}",
                },
            ],
        }
    )
