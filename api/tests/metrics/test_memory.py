"""Memory bounds of the sample ring: bytes per stored sample, the cap, short windows."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from structlog.testing import capture_logs

from tests.support.metrics_fakes import fake_sample
from vintagestory_api.metrics.service import MAX_SAMPLES, MetricsService


@contextmanager
def traced() -> Iterator[None]:
    if tracemalloc.is_tracing():  # started by someone else (python -X tracemalloc): leave it
        yield
        return
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


def test_a_kept_sample_costs_under_600_bytes(data_dir: Path) -> None:
    metrics = MetricsService(data_dir, interval_seconds=1, retention_minutes=200)
    metrics.add(fake_sample(0))  # warm up pydantic and the codec outside the measurement
    count = 10_000
    with traced():
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for n in range(1, count + 1):
            # Each sample is built here and handed over, so whatever the ring keeps is counted.
            metrics.add(fake_sample(n))
        gc.collect()
        per_sample = (tracemalloc.get_traced_memory()[0] - before) / count
    assert len(metrics) == count + 1
    # About 230 bytes packed; a pydantic model tree per sample was about 3,900.
    assert per_sample < 600, f"{per_sample:.0f} bytes per sample"


def test_ring_never_holds_more_than_the_cap(data_dir: Path) -> None:
    metrics = MetricsService(data_dir, interval_seconds=1, retention_minutes=10, max_samples=50)
    assert metrics.capacity == 50
    start = datetime.now(UTC) - timedelta(seconds=120)
    samples = [fake_sample(n, at=start + timedelta(seconds=n)) for n in range(120)]
    for sample in samples:
        metrics.add(sample)
        assert len(metrics) <= 50
    # The cap truncates the retention: history returns what is kept, the newest, in order.
    assert metrics.history(10) == samples[-50:]
    metrics.resize(interval_seconds=1, retention_minutes=20)
    assert metrics.capacity == 50
    assert metrics.history(20) == samples[-50:]


def test_settings_extremes_are_capped_and_logged(data_dir: Path) -> None:
    with capture_logs() as logs:
        metrics = MetricsService(data_dir, interval_seconds=1, retention_minutes=10080)
    assert metrics.capacity == MAX_SAMPLES
    assert {"event": "metrics_ring_capped", "wanted": 604_800} in [
        {"event": log["event"], "wanted": log.get("wanted")} for log in logs
    ]
    # The longest retention at the default interval fits under the cap.
    metrics.resize(interval_seconds=10, retention_minutes=10080)
    assert metrics.capacity == 60_480


def test_short_window_over_a_large_ring_reads_only_the_newest(data_dir: Path) -> None:
    metrics = MetricsService(data_dir, interval_seconds=1, retention_minutes=1000)
    newest = datetime.now(UTC)
    base = fake_sample(1)
    for steps_ago in range(20_000, -1, -1):
        stamp = newest - timedelta(seconds=30 * steps_ago)
        metrics.add(base.model_copy(update={"timestamp": stamp}))
    with traced():
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        window = metrics.history(1, now=newest)
        peak = tracemalloc.get_traced_memory()[1] - before
    assert [s.timestamp for s in window] == [
        newest - timedelta(seconds=60),
        newest - timedelta(seconds=30),
        newest,
    ]
    # Copying the 20,001 entries alone would take 160 KB; decoding them, megabytes.
    assert peak < 100_000, f"history(1) peaked at {peak} bytes"
