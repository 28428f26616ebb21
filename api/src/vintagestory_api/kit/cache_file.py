"""A cache of upstream data on disk, and how it reports its health."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

import structlog

from .schemas import ComponentHealth
from .state_files import load_state, write_json

logger = structlog.get_logger()

T = TypeVar("T")


class CacheFile(Generic[T]):
    """A cache of upstream data on disk: read at startup, rewritten after each refresh.

    Losing it costs a refetch, never an admin's decision, so no problem with it is raised:
    each is logged (`<name>_corrupt`, `<name>_write_failed`) and reported by `health`. A failed
    write is reported until a write succeeds. A file found damaged at startup is reported for
    the life of the process even once a refresh has rewritten it: the refresh runs at once, and
    the operator should still learn that something broke the file (and where it was kept).
    """

    def __init__(self, path: Path, validate: Callable[[Any], T], *, name: str) -> None:
        self.path = path
        self._validate = validate
        self._name = name
        self._loaded = ComponentHealth(status="ok")
        self._write_failed: ComponentHealth | None = None

    @property
    def health(self) -> ComponentHealth:
        return self._write_failed if self._write_failed is not None else self._loaded

    def state_file_health(self) -> dict[str, ComponentHealth]:
        return {self.path.name: self.health}

    def load(self) -> T | None:
        loaded = load_state(self.path, self._validate, event=f"{self._name}_corrupt")
        self._loaded = loaded.health(
            self.path, without_backup="an empty cache", until="(reported until a restart)"
        )
        return loaded.value

    async def save(self, value: Any) -> bool:
        """Durably write in a worker thread; False (logged, reported) when the write failed.

        The fresh data is still served from memory, so a full disk costs the copy a restart
        would read, not the run that fetched it.
        """
        try:
            await asyncio.to_thread(write_json, self.path, value)
        except OSError as exc:
            logger.error(f"{self._name}_write_failed", file=str(self.path), reason=str(exc))
            self._write_failed = ComponentHealth(
                status="degraded",
                reason=f"{self.path.name}: the last write failed ({exc.strerror or exc}); "
                "fresh data is served from memory but not kept across a restart",
            )
            return False
        self._write_failed = None
        return True
