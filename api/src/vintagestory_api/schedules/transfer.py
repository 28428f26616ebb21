"""Config as code: the schedules as a versioned document, and importing one all or nothing (a
part of `SchedulesService`, kept apart so the service module stays readable)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import tzinfo

import structlog

from vintagestory_api.scheduler.schemas import ScheduleWarningInfo

from .control import utc_now
from .errors import ScheduleInvalid
from .plans import Planned, check_rules, one_off_in_past, planned, save_warnings
from .schemas import ImportResult, ScheduleCreate
from .store import SchedulesStore

logger = structlog.get_logger()


class Transfer:
    _store: SchedulesStore
    _default_tz: tzinfo
    _register: Callable[[ScheduleCreate], None]
    _unregister: Callable[[str], None]

    def export(self) -> list[ScheduleCreate]:
        return list(self._store.document.schedules)

    async def import_all(self, schedules: list[ScheduleCreate], *, dry_run: bool) -> ImportResult:
        """Make the saved schedules exactly `schedules`: all valid, or nothing changes."""
        seen: set[str] = set()
        warnings: dict[str, list[ScheduleWarningInfo]] = {}
        for index, schedule in enumerate(schedules):
            if schedule.id in seen:
                raise ScheduleInvalid(f"body.schedules.{index}.id: '{schedule.id}' appears twice")
            seen.add(schedule.id)
        async with self._store.lock:
            document = self._store.document
            old = {s.id: s for s in document.schedules}
            plans: list[Planned] = []
            for index, schedule in enumerate(schedules):
                where = f"body.schedules.{index}"
                plans.append(
                    Planned(
                        schedule,
                        planned(schedule.trigger, self._default_tz, field=f"{where}.trigger"),
                    )
                )
                check_rules(schedule, where)
                past = one_off_in_past(schedule.trigger, utc_now())
                if past and old.get(schedule.id) != schedule:
                    raise ScheduleInvalid(f"{where}.trigger.at: must be in the future")
            for mine in plans:
                warnings[mine.schedule.id] = save_warnings(mine, plans, utc_now())
            result = ImportResult(
                dry_run=dry_run,
                created=sorted(seen - old.keys()),
                updated=sorted(s.id for s in schedules if s.id in old and old[s.id] != s),
                deleted=sorted(old.keys() - seen),
                unchanged=sorted(s.id for s in schedules if old.get(s.id) == s),
                warnings=warnings,
            )
            if dry_run:
                return result
            changed = {*result.updated, *result.deleted}
            await self._store.save(
                document.model_copy(
                    update={
                        "schedules": list(schedules),
                        "skip_next": {
                            k: v
                            for k, v in document.skip_next.items()
                            if k not in changed and k in seen
                        },
                        "postponed": {
                            k: v
                            for k, v in document.postponed.items()
                            if k not in changed and k in seen
                        },
                    }
                )
            )
            for schedule_id in result.deleted:
                self._unregister(schedule_id)
            for schedule in schedules:
                if schedule.id in result.created or schedule.id in result.updated:
                    self._register(schedule)
        logger.info(
            "schedules_imported",
            created=result.created,
            updated=result.updated,
            deleted=result.deleted,
        )
        return result
