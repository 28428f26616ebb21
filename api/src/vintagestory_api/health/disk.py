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


class DiskProbe:
    """Disk usage of one directory, read at most once per `max_age` seconds.

    The path is resolved once, when the probe is built: the data directory does not move while
    the process runs.
    """

    def __init__(
        self,
        path: Path,
        *,
        max_age: float = MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._path = str(path.resolve())
        self._max_age = max_age
        self._clock = clock
        self._reading: DiskHealth | None = None
        self._read_at: float | None = None

    def read(self) -> DiskHealth | None:
        now = self._clock()
        if self._read_at is None or now - self._read_at >= self._max_age:
            self._reading, self._read_at = disk_health(self._path), now
        return self._reading
