from pathlib import Path

import pytest

from vintagestory_api.health import disk
from vintagestory_api.health.disk import DiskProbe
from vintagestory_api.health.schemas import DiskHealth


def test_disk_probe_reads_the_disk_at_most_once_per_max_age(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[str] = []
    real = disk.disk_health

    def counting(path: str) -> DiskHealth | None:
        reads.append(path)
        return real(path)

    monkeypatch.setattr(disk, "disk_health", counting)
    now = [100.0]
    probe = DiskProbe(tmp_path, max_age=1.0, clock=lambda: now[0])

    first = probe.read()
    now[0] += 0.5
    assert probe.read() is first
    now[0] += 0.5
    probe.read()

    assert reads == [str(tmp_path.resolve())] * 2
    assert first is not None
    assert first.total_bytes > 0


def test_disk_probe_reports_none_for_an_unreadable_path(tmp_path: Path) -> None:
    assert DiskProbe(tmp_path / "missing").read() is None
