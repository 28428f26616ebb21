"""The schedules state file: schedules, holds and per-occurrence changes, written atomically
and loaded with the damaged-file fallback every state file has."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vintagestory_api.errors import StateWriteFailed
from vintagestory_api.kit.schemas import ComponentHealth
from vintagestory_api.kit.state_files import load_state, write_failed_health, write_json

from .schemas import MAX_SCHEDULES, Hold, Occurrence, Postponement, ScheduleCreate

logger = structlog.get_logger()

SCHEDULES_FILE = "schedules.json"


class SchedulesDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(default=1, ge=1, le=1)
    schedules: list[ScheduleCreate] = Field(default_factory=list, max_length=MAX_SCHEDULES)
    holds: list[Hold] = Field(default_factory=list, max_length=1000)
    skip_next: dict[str, Occurrence] = Field(default_factory=dict)
    postponed: dict[str, Postponement] = Field(default_factory=dict)


def parse_document(document: Any) -> SchedulesDocument:
    try:
        return SchedulesDocument.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "top level"
        raise ValueError(f"{where}: {first['msg']}") from exc


class SchedulesStore:
    """The last saved document; `save` replaces it on disk first, then in memory."""

    def __init__(self, path: Path, document: SchedulesDocument, health: ComponentHealth) -> None:
        self._path = path
        self.document = document
        self._health = health
        self._lock = asyncio.Lock()

    @classmethod
    def load(cls, path: Path) -> SchedulesStore:
        loaded = load_state(path, parse_document, event="schedules_state_corrupt")
        document = loaded.value if loaded.value is not None else SchedulesDocument()
        health = loaded.health(
            path, without_backup="no schedules", until="until the next successful change"
        )
        logger.info(
            "schedules_loaded",
            source=loaded.source,
            schedules=len(document.schedules),
            holds=len(document.holds),
        )
        return cls(path, document, health)

    @property
    def health(self) -> ComponentHealth:
        return self._health

    def state_file_health(self) -> dict[str, ComponentHealth]:
        return {self._path.name: self._health}

    @property
    def lock(self) -> asyncio.Lock:
        """Held around a read-modify-save, so two changes never interleave."""
        return self._lock

    async def save(self, document: SchedulesDocument) -> None:
        """Write `document`, then make it current; raises `StateWriteFailed`, changing nothing."""
        if document == self.document and self._health.status == "ok":
            return
        data = document.model_dump(mode="json", exclude_none=True)
        try:
            await asyncio.to_thread(write_json, self._path, data)
        except OSError as exc:
            logger.error("schedules_write_failed", file=str(self._path), error=str(exc))
            self._health = write_failed_health(self._path, exc)
            raise StateWriteFailed(f"schedules could not be saved: {exc}") from exc
        self.document = document
        self._health = ComponentHealth(status="ok")
