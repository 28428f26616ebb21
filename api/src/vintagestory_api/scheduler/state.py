"""Job decisions the in-memory scheduler forgets on restart: which jobs an admin paused."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vintagestory_api.errors import StateWriteFailed
from vintagestory_api.kit.schemas import ComponentHealth
from vintagestory_api.kit.state_files import (
    complete_even_if_cancelled,
    load_state,
    write_failed_health,
    write_json,
)

logger = structlog.get_logger()

JOB_STATE_FILE = "job-state.json"

JobId = Annotated[str, Field(min_length=1, max_length=200)]


class JobStateDocument(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    paused: list[JobId] = Field(default_factory=list, max_length=10000)


def parse_document(document: Any) -> JobStateDocument:
    try:
        return JobStateDocument.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "top level"
        raise ValueError(f"{where}: {first['msg']}") from exc


class JobStateStore:
    """Persisted pause flags, keyed by job id; re-applied when jobs are registered."""

    def __init__(
        self,
        path: Path,
        paused: frozenset[str] = frozenset(),
        health: ComponentHealth | None = None,
    ) -> None:
        self._path = path
        self._paused = paused
        self._health = health or ComponentHealth(status="ok")
        self._lock = asyncio.Lock()

    @classmethod
    def load(cls, path: Path) -> JobStateStore:
        loaded = load_state(path, parse_document, event="job_state_corrupt")
        paused = frozenset(loaded.value.paused) if loaded.value is not None else frozenset()
        health = loaded.health(
            path, without_backup="no paused jobs", until="until the next successful change"
        )
        logger.info("job_state_loaded", source=loaded.source, paused=sorted(paused))
        return cls(path, paused, health)

    @property
    def health(self) -> ComponentHealth:
        return self._health

    def state_file_health(self) -> dict[str, ComponentHealth]:
        return {self._path.name: self._health}

    @property
    def paused(self) -> frozenset[str]:
        return self._paused

    def is_paused(self, job_id: str) -> bool:
        return job_id in self._paused

    async def set_paused(self, job_id: str, paused: bool) -> bool:
        """Persist the flag; returns whether it changed. Raises `StateWriteFailed`."""
        return await complete_even_if_cancelled(self._set_paused(job_id, paused))

    async def _set_paused(self, job_id: str, paused: bool) -> bool:
        async with self._lock:
            # Unchanged is not written (that would rotate `.bak` away), unless the file is known
            # not to hold what is running: then this write repairs it.
            if (job_id in self._paused) == paused and self._health.status == "ok":
                return False
            new = self._paused | {job_id} if paused else self._paused - {job_id}
            document = JobStateDocument(paused=sorted(new)).model_dump()
            try:
                await asyncio.to_thread(write_json, self._path, document)
            except OSError as exc:
                logger.error("job_state_write_failed", file=str(self._path), error=str(exc))
                self._health = write_failed_health(self._path, exc)
                raise StateWriteFailed(f"job state could not be saved: {exc}") from exc
            changed = new != self._paused
            self._paused = new
            self._health = ComponentHealth(status="ok")
            return changed
