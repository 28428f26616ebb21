"""Space on the data directory's filesystem, as `/healthz` reports it."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

from .schemas import DiskHealth

# How long one reading answers probes. Liveness probes may come several times a second (a load
# balancer, an orchestrator, a monitor each polling); free space moves slowly, so a reading up to
# a second old is as good as a fresh `statvfs` per probe and keeps the probe cheap.
MAX_AGE_SECONDS = 1.0


def disk_health(path: str) -> DiskHealth | None:
    """One reading now; None when the filesystem cannot be read."""
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return None
    return DiskHealth(
        path=path,
        total_bytes=usage.total,
        used_bytes=usage.used,
        free_bytes=usage.free,
        used_percent=round(usage.used / usage.total * 100, 1) if usage.total else 0.0,
    )


def judged(reading: DiskHealth | None, min_free_bytes: int) -> DiskHealth | None:
    """The reading, degraded when its free space is below `min_free_bytes` (0: never)."""
    if reading is None:
        return None
    update: dict[str, object] = {"min_free_bytes": min_free_bytes}
    if min_free_bytes > 0 and reading.free_bytes < min_free_bytes:
        # Said before writes fail, so an operator can act while changes still save.
        update["status"] = "degraded"
        update["reason"] = (
            f"{reading.free_bytes} bytes free, less than the {min_free_bytes} that "
            "VS_MIN_FREE_DISK_BYTES asks for; writes of settings and caches may soon fail"
        )
    return reading.model_copy(update=update)


class DiskProbe:
    """Disk usage of one directory, read at most once per `max_age` seconds.

    The path is resolved once, when the probe is built: the data directory does not move while
    the process runs.
    """

    def __init__(
        self,
        path: Path,
        *,
        min_free_bytes: int = 0,
        max_age: float = MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._path = str(path.resolve())
        self._min_free_bytes = min_free_bytes
        self._max_age = max_age
        self._clock = clock
        self._reading: DiskHealth | None = None
        self._read_at: float | None = None

    def read(self) -> DiskHealth | None:
        now = self._clock()
        if self._read_at is None or now - self._read_at >= self._max_age:
            reading = judged(disk_health(self._path), self._min_free_bytes)
            self._reading, self._read_at = reading, now
        return self._reading
