from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.damage import KINDS, damage, release_fifo
from tests.support.metrics_fakes import fake_sample
from vintagestory_api.metrics.jobs import metrics_collection
from vintagestory_api.metrics.schemas import DiskSample, MetricsSample
from vintagestory_api.metrics.service import MetricsService, ring_size


@pytest.fixture
def metrics(data_dir: Path) -> MetricsService:
    (data_dir / "state").mkdir(parents=True, exist_ok=True)
    return MetricsService(data_dir, interval_seconds=1, retention_minutes=1)


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield child
    finally:
        child.kill()
        child.wait()


def test_ring_size_covers_the_retention_at_the_interval() -> None:
    assert ring_size(10, 1440) == 8640
    assert ring_size(1, 1) == 60
    assert ring_size(7, 1) == 9  # rounds up: 60 s need nine 7 s samples


async def test_sampling_grows_the_ring_up_to_its_size_then_drops_the_oldest(
    metrics: MetricsService,
) -> None:
    assert metrics.capacity == 60
    assert metrics.current() is None
    taken = [await metrics.sample() for _ in range(3)]
    assert len(metrics.history(1)) == 3
    assert metrics.current() == taken[-1]
    for _ in range(70):
        await metrics.sample()
    samples = metrics.history(1)
    assert len(samples) == 60
    assert taken[0] not in samples
    assert [s.timestamp for s in samples] == sorted(s.timestamp for s in samples)


async def test_metrics_job_adds_one_sample_per_run(metrics: MetricsService) -> None:
    result = await metrics_collection(metrics)
    assert result == {"samples_kept": 1, "capacity": 60, "game_server_running": False}
    await metrics_collection(metrics)
    assert len(metrics) == 2


async def test_sample_describes_the_api_process_host_and_disk(
    metrics: MetricsService, data_dir: Path
) -> None:
    sample = await metrics.sample()
    assert sample.api.rss_mib > 0
    assert sample.api.threads >= 1
    assert sample.api.open_files is None or sample.api.open_files > 0
    # The API's baseline is taken at construction, so even the first sample has a value.
    assert sample.api.cpu_percent is not None
    assert sample.api.cpu_percent >= 0
    assert 0 < sample.host.memory_used_mib <= sample.host.memory_total_mib
    assert sample.disk is not None
    assert sample.disk.path == str(data_dir.resolve())
    assert sample.disk.used_bytes + sample.disk.free_bytes <= sample.disk.total_bytes


def test_sampling_does_not_sleep_for_cpu_percent(metrics: MetricsService) -> None:
    started = time.perf_counter()
    for _ in range(20):
        metrics.collect()
    # psutil's blocking cpu_percent(interval=...) would take a tenth of a second or more each.
    assert (time.perf_counter() - started) / 20 < 0.05


async def test_game_server_is_null_without_pid_file_filled_while_alive_null_after_exit(
    metrics: MetricsService, data_dir: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    assert (await metrics.sample()).game_server is None

    (data_dir / "state" / "server.pid").write_text(f"{sleeper.pid}\n")
    sampled = await metrics.sample()
    first = sampled.game_server
    assert first is not None
    # The pid file says which process, not who plays on it.
    assert sampled.players_online is None
    assert first.pid == sleeper.pid
    assert first.rss_mib > 0
    assert first.threads >= 1
    assert first.cpu_percent is None  # no baseline yet on first sight
    second = (await metrics.sample()).game_server
    assert second is not None
    assert second.cpu_percent is not None

    sleeper.kill()
    sleeper.wait()
    assert (await metrics.sample()).game_server is None


@pytest.mark.parametrize("content", ["", "not a pid", "-5", "0"])
async def test_unusable_pid_file_means_no_game_server(
    metrics: MetricsService, data_dir: Path, content: str
) -> None:
    (data_dir / "state" / "server.pid").write_text(content)
    assert (await metrics.sample()).game_server is None


@pytest.mark.parametrize("kind", KINDS)
async def test_unreadable_pid_file_means_no_game_server_and_never_blocks(
    metrics: MetricsService, data_dir: Path, kind: str
) -> None:
    pid_file = data_dir / "state" / "server.pid"
    damage(pid_file, kind)
    try:
        # A FIFO must not hold the sampler until some writer comes along.
        sample = await asyncio.wait_for(metrics.sample(), timeout=10)
    finally:
        release_fifo(pid_file)
    assert sample.game_server is None


async def test_recycled_pid_is_not_taken_for_the_old_process(
    metrics: MetricsService, data_dir: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    pid_file = data_dir / "state" / "server.pid"
    pid_file.write_text(str(sleeper.pid))
    await metrics.sample()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        pid_file.write_text(str(other.pid))
        game = (await metrics.sample()).game_server
        assert game is not None
        assert game.pid == other.pid
        assert game.cpu_percent is None  # a new process, so a new baseline
    finally:
        other.kill()
        other.wait()


async def test_resize_keeps_the_newest_samples(metrics: MetricsService) -> None:
    for _ in range(60):
        await metrics.sample()
    newest = metrics.history(1)[-10:]
    metrics.resize(interval_seconds=6, retention_minutes=1)
    assert metrics.capacity == 10
    assert metrics.history(1) == newest
    metrics.resize(interval_seconds=1, retention_minutes=2)
    assert metrics.capacity == 120
    assert metrics.history(2) == newest
    assert (metrics.interval_seconds, metrics.retention_minutes) == (1, 2)


def test_disabling_sampling_keeps_the_ring(metrics: MetricsService) -> None:
    metrics.resize(interval_seconds=0, retention_minutes=1)
    assert metrics.capacity == 60
    assert metrics.interval_seconds == 0


def test_history_returns_only_the_window_asked_for(metrics: MetricsService) -> None:
    now = datetime.now(UTC)
    for minutes_ago in (5, 3, 1, 0):
        sample = metrics.collect().model_copy(
            update={"timestamp": now - timedelta(minutes=minutes_ago)}
        )
        metrics.add(sample)
    assert len(metrics.history(2, now=now)) == 2
    assert len(metrics.history(4, now=now)) == 3


def _without_optionals(sample: MetricsSample) -> MetricsSample:
    game = sample.game_server
    assert game is not None
    return sample.model_copy(
        update={
            "api": sample.api.model_copy(update={"cpu_percent": None, "open_files": None}),
            "game_server": game.model_copy(update={"cpu_percent": None, "open_files": None}),
            "players_online": None,
            "host": sample.host.model_copy(update={"load_average": None, "cpu_count": None}),
            "disk": None,
        }
    )


@pytest.mark.parametrize(
    "sample",
    [
        fake_sample(7),
        fake_sample(8).model_copy(update={"game_server": None, "players_online": None}),
        # Nobody online is 0, not null: the flag keeps the two apart.
        fake_sample(9).model_copy(update={"players_online": 0}),
        _without_optionals(fake_sample(9)),
        fake_sample(10).model_copy(
            update={
                "disk": DiskSample(path="/srv/späße", used_bytes=0, free_bytes=0, total_bytes=0)
            }
        ),
    ],
    ids=["full", "no-game-server", "nobody-online", "nulls", "non-ascii-path"],
)
def test_a_kept_sample_reads_back_exactly(metrics: MetricsService, sample: MetricsSample) -> None:
    # The parameters are built at collection time, which in a long run is minutes before this
    # test: stamp the sample now so it falls inside history(1).
    sample = sample.model_copy(update={"timestamp": datetime.now(UTC)})
    metrics.add(sample)
    assert metrics.current() == sample
    assert [s.model_dump(mode="json") for s in metrics.history(1)] == [
        sample.model_dump(mode="json")
    ]
