"""Resource sampling with psutil, and the in-memory ring of recent samples."""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import threading
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import psutil
import structlog

from vintagestory_api.kit.file_reads import os_error_reason, read_file_bytes

from .packing import SAMPLE_TIMESTAMP, micros, pack_sample, unpack_sample
from .prometheus import GameServerLike, PrometheusMetrics, SchedulerLike
from .schemas import DiskSample, HostSample, MetricsSample, ProcessSample

logger = structlog.get_logger()

MIB = 1024 * 1024
SERVER_PID_FILE = "server.pid"

# The ring's ceiling whatever the settings say. A stored sample costs about 250 bytes
# (tests/metrics/test_memory.py measures it), so a full ring stays near 25 MB; uncapped, the
# settings' extremes (every second for 7 days: 604,800 samples) would need about 150 MB. The cap
# still holds the longest retention at any interval of 7 s or more, and a day at 1 s.
MAX_SAMPLES = 100_000


class SampledServer(Protocol):
    """What the sampler reads from the supervised game server."""

    @property
    def pid(self) -> int | None: ...
    @property
    def players_online(self) -> int | None: ...


def ring_size(interval_seconds: int, retention_minutes: int) -> int:
    """How many samples cover the retention at this interval (before the cap)."""
    return max(1, math.ceil(retention_minutes * 60 / interval_seconds))


class _ProcessProbe:
    """One watched process, kept between samples so `cpu_percent(None)` has a baseline.

    psutil measures CPU use as the difference since the previous call on the same `Process`
    object, so the object must live across samples; a fresh one would report 0.0 or need a
    blocking `interval`.
    """

    def __init__(self, process: psutil.Process) -> None:
        self.process = process
        # The first call only sets the baseline; its 0.0 means nothing.
        process.cpu_percent(interval=None)
        self.primed = False

    def sample(self) -> ProcessSample:
        proc = self.process
        with proc.oneshot():
            cpu = proc.cpu_percent(interval=None)
            rss = proc.memory_info().rss
            threads = proc.num_threads()
            open_files = _open_files(proc)
        measured, self.primed = self.primed, True
        return ProcessSample(
            pid=proc.pid,
            rss_mib=round(rss / MIB, 2),
            cpu_percent=round(cpu, 1) if measured else None,
            open_files=open_files,
            threads=threads,
        )


def _open_files(proc: psutil.Process) -> int | None:
    # num_fds() lists /proc/<pid>/fd; open_files() would also stat and readlink every one.
    try:
        if hasattr(proc, "num_fds"):
            return int(proc.num_fds())
        if hasattr(proc, "num_handles"):
            return int(proc.num_handles())
    except psutil.AccessDenied:
        return None
    return None


class MetricsService:
    """Takes samples and keeps the newest ones for the retention window."""

    def __init__(
        self,
        data_dir: Path,
        *,
        interval_seconds: int,
        retention_minutes: int,
        max_samples: int = MAX_SAMPLES,
        game_server: SampledServer | None = None,
    ) -> None:
        self._data_dir = data_dir
        # The process the API supervises; without one, whatever the pid file names.
        self._supervised = game_server
        self._pid_file = data_dir / "state" / SERVER_PID_FILE
        self._lock = threading.Lock()
        self._sample_lock = threading.Lock()
        self._interval = interval_seconds
        self._retention = retention_minutes
        # A disabled job (interval 0) keeps the ring it had; sizing needs a positive interval.
        self._sizing_interval = interval_seconds if interval_seconds > 0 else 10
        self._max_samples = max_samples
        # Packed samples (see _pack), not models: a model tree costs about 3.9 KB a sample.
        self._samples: deque[bytes] = deque(maxlen=self._capacity_for(retention_minutes))
        self._api = _ProcessProbe(psutil.Process(os.getpid()))
        self._api.primed = True  # the baseline was taken just now, at construction
        self._game: _ProcessProbe | None = None

    @property
    def interval_seconds(self) -> int:
        return self._interval

    @property
    def retention_minutes(self) -> int:
        return self._retention

    @property
    def capacity(self) -> int:
        """How many samples the ring holds: the retention's worth, or fewer under the cap."""
        return self._samples.maxlen or 0

    def __len__(self) -> int:
        return len(self._samples)

    def resize(self, interval_seconds: int, retention_minutes: int) -> None:
        """Apply new settings; the ring keeps its newest samples."""
        with self._lock:
            self._interval = interval_seconds
            self._retention = retention_minutes
            if interval_seconds > 0:
                self._sizing_interval = interval_seconds
            size = self._capacity_for(retention_minutes)
            if size != self._samples.maxlen:
                # deque(iterable, maxlen) keeps the rightmost, i.e. newest, items.
                self._samples = deque(self._samples, maxlen=size)
        logger.info(
            "metrics_ring_resized",
            interval_seconds=interval_seconds,
            retention_minutes=retention_minutes,
            capacity=size,
        )

    async def sample(self) -> MetricsSample:
        """Take one sample off the event loop and keep it."""
        # psutil reads /proc and statvfs on the data dir; a slow or hung filesystem must not
        # stall request handling, so the blocking part runs in a worker thread.
        taken = await asyncio.to_thread(self.collect)
        self.add(taken)
        return taken

    def add(self, sample: MetricsSample) -> None:
        packed = pack_sample(sample)
        with self._lock:
            self._samples.append(packed)

    def collect(self) -> MetricsSample:
        """Measure everything once (blocking) without storing it."""
        with self._sample_lock:
            return MetricsSample(
                timestamp=datetime.now(UTC),
                api=self._api.sample(),
                game_server=self._game_server(),
                players_online=(
                    self._supervised.players_online if self._supervised is not None else None
                ),
                host=_host(),
                disk=_disk(self._data_dir),
            )

    def current(self) -> MetricsSample | None:
        with self._lock:
            packed = self._samples[-1] if self._samples else None
        return None if packed is None else unpack_sample(packed)

    def history(self, minutes: int, *, now: datetime | None = None) -> list[MetricsSample]:
        """Samples of the last `minutes` still in the ring, oldest first."""
        since = micros((now or datetime.now(UTC)) - timedelta(minutes=minutes))
        window: list[bytes] = []
        with self._lock:
            # The ring is in time order: walk back from the newest and stop at the first too
            # old, so a short window over a large ring touches only what it returns.
            for packed in reversed(self._samples):
                if SAMPLE_TIMESTAMP.unpack_from(packed)[0] < since:
                    break
                window.append(packed)
        window.reverse()
        return [unpack_sample(packed) for packed in window]

    def _capacity_for(self, retention_minutes: int) -> int:
        wanted = ring_size(self._sizing_interval, retention_minutes)
        if wanted <= self._max_samples:
            return wanted
        logger.warning(
            "metrics_ring_capped",
            wanted=wanted,
            capacity=self._max_samples,
            kept_minutes=self._max_samples * self._sizing_interval // 60,
        )
        return self._max_samples

    def _game_server(self) -> ProcessSample | None:
        pid = self._supervised.pid if self._supervised is not None else self._read_pid()
        if pid is None:
            self._game = None
            return None
        probe = self._game
        # is_running() compares the create time too, so a recycled pid is not taken for ours.
        if probe is None or probe.process.pid != pid or not probe.process.is_running():
            try:
                probe = _ProcessProbe(psutil.Process(pid))
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                self._game = None
                return None
            self._game = probe
        try:
            # A killed child that its parent has not reaped yet is a zombie: gone, not running.
            if probe.process.status() == psutil.STATUS_ZOMBIE:
                self._game = None
                return None
            return probe.sample()
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            self._game = None
            return None
        except psutil.AccessDenied:
            logger.warning("game_server_sample_denied", pid=pid)
            return None

    def _read_pid(self) -> int | None:
        try:
            # Non-blocking and bounded: a FIFO or a device here must not hang the sampler.
            raw = read_file_bytes(self._pid_file, 32)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            logger.warning(
                "server_pid_file_unreadable", path=str(self._pid_file), error=os_error_reason(exc)
            )
            return None
        text = raw.decode("ascii", errors="replace").strip()
        if not text.isdigit() or int(text) <= 0:
            return None
        return int(text)


def _host() -> HostSample:
    memory = psutil.virtual_memory()
    try:
        load = psutil.getloadavg()
        load_average: tuple[float, float, float] | None = (
            round(load[0], 2),
            round(load[1], 2),
            round(load[2], 2),
        )
    except (AttributeError, OSError):
        load_average = None
    return HostSample(
        memory_used_mib=round((memory.total - memory.available) / MIB, 1),
        memory_total_mib=round(memory.total / MIB, 1),
        memory_percent=memory.percent,
        load_average=load_average,
        cpu_count=psutil.cpu_count(),
    )


def _disk(path: Path) -> DiskSample | None:
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return None
    return DiskSample(
        path=str(path.resolve()),
        used_bytes=usage.used,
        free_bytes=usage.free,
        total_bytes=usage.total,
    )


class GameServerMetricsSource(SampledServer, GameServerLike, Protocol):
    """The game server as both the sampler and the exposition read it."""


def build_metrics(
    data_dir: Path,
    scheduler: SchedulerLike | None,
    *,
    interval_seconds: int,
    retention_minutes: int,
    game_server: GameServerMetricsSource | None = None,
) -> tuple[MetricsService, PrometheusMetrics]:
    """The sampler and the Prometheus registry of one app, watching `scheduler` and
    `game_server` when given."""
    metrics = MetricsService(
        data_dir,
        interval_seconds=interval_seconds,
        retention_minutes=retention_minutes,
        game_server=game_server,
    )
    prometheus = PrometheusMetrics()
    if scheduler is not None:
        prometheus.watch_scheduler(scheduler)
    if game_server is not None:
        prometheus.watch_game_server(game_server)
    return metrics, prometheus
