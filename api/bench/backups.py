"""World backups: our backup of a large world against the same steps done by hand.

By hand is what an operator would script: SQLite's online backup API into a file, the same
quick_check, the same zstd level, SHA-256 of the world and the archive. Ours is
`BackupService.take()`: the offline copy of a stopped server's world, and the running-server
path (`/autosavenow`, `/genbackup` by the fake game server, which copies with the same SQLite
call). Memory: this process's RSS is sampled during a backup and during a download of the
archive over HTTP (uvicorn in a thread, the client streaming it to nowhere).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shlex
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil
import uvicorn
import zstandard

from bench.processes import API_DIR, free_port
from bench.report import Row
from vintagestory_api.api_settings.service import ApiSettingsService
from vintagestory_api.app import create_app
from vintagestory_api.backups.service import BackupService
from vintagestory_api.config import Settings
from vintagestory_api.gameserver.exits import Timings
from vintagestory_api.gameserver.launch import LaunchConfig
from vintagestory_api.gameserver.service import GameServerService
from vintagestory_api.scheduler.cron import host_timezone

MIB = 1024 * 1024
TIMINGS = Timings(
    start_timeout=120, stop_timeout=300, kill_timeout=30, backoff=10, auto_restart=False
)
ADMIN_KEY = "bench-admin-key-0123456789abcdef0123"


def build_world(path: Path, size_mib: int) -> None:
    """A WAL-mode world of `size_mib` MiB: 1 MiB rows, half random (as compressed chunk data
    is), half repetitive, written in a few transactions so it takes seconds, not minutes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE chunks (position INTEGER PRIMARY KEY, data BLOB)")
    filler = b"chunk-data" * (MIB // 20)
    for start in range(0, size_mib, 64):
        conn.execute("BEGIN")
        for position in range(start, min(start + 64, size_mib)):
            blob = os.urandom(MIB // 2) + filler[: MIB // 2]
            conn.execute("INSERT INTO chunks VALUES (?, ?)", (position, blob))
        conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def by_hand(world: Path, out_dir: Path) -> float:
    began = time.perf_counter()
    copy = out_dir / "hand.vcdbs"
    src, dst = sqlite3.connect(str(world)), sqlite3.connect(str(copy))
    src.backup(dst)
    dst.execute("PRAGMA journal_mode=DELETE")
    assert dst.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    dst.close()
    src.close()
    world_hash, archive_hash = hashlib.sha256(), hashlib.sha256()
    with open(copy, "rb") as handle, open(out_dir / "hand.vcdbs.zst", "wb") as out:

        class Sink:
            def write(self, data: bytes) -> int:
                archive_hash.update(data)
                return out.write(data)

        compressor = zstandard.ZstdCompressor(level=3, write_checksum=True)
        with compressor.stream_writer(Sink(), closefd=False) as writer:  # type: ignore[arg-type]
            while chunk := handle.read(MIB):
                world_hash.update(chunk)
                writer.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    elapsed = time.perf_counter() - began
    copy.unlink()
    (out_dir / "hand.vcdbs.zst").unlink()
    return elapsed


class RssPeak:
    """This process's peak RSS while the block runs, sampled every 20 ms."""

    def __init__(self) -> None:
        self._ps = psutil.Process()
        self.start = self.peak = self._ps.memory_info().rss
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(0.02):
            self.peak = max(self.peak, self._ps.memory_info().rss)

    def __enter__(self) -> RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.start) / MIB


def _service(root: Path, gameserver: GameServerService) -> BackupService:
    settings = ApiSettingsService.load(root / "api-settings.json")
    service = BackupService(
        root / "backups", root / "serverdata", gameserver, settings, timezone=host_timezone()
    )
    service.open()
    return service


async def _ours_offline(root: Path) -> tuple[float, float]:
    config = LaunchConfig(server_dir=root / "none", data_path=root / "serverdata")
    service = _service(root, GameServerService(config, lambda: TIMINGS))
    with RssPeak() as rss:
        began = time.perf_counter()
        backup = await service.take("manual")
        elapsed = time.perf_counter() - began
    assert backup.method == "offline_copy"
    return elapsed, rss.growth_mib


async def _ours_running(root: Path) -> float:
    command = shlex.join([sys.executable, str(API_DIR / "tests" / "support" / "fake_vs_server.py")])
    config = LaunchConfig(
        server_dir=root / "none", data_path=root / "serverdata", command=command, port=free_port()
    )
    os.environ.update(FAKE_VS_TIME_SCALE="0.02", FAKE_VS_BACKUP_S="0", FAKE_VS_WRITE_INTERVAL_S="0")
    gameserver = GameServerService(config, lambda: TIMINGS)
    service = _service(root, gameserver)
    await gameserver.start("bench")
    deadline = time.monotonic() + 120
    while gameserver.state != "running":
        assert time.monotonic() < deadline, "the fake never became ready"
        await asyncio.sleep(0.05)
    try:
        began = time.perf_counter()
        backup = await service.take("manual")
        elapsed = time.perf_counter() - began
        assert backup.method == "genbackup"
    finally:
        await gameserver.close()
    return elapsed


def _download(root: Path) -> tuple[float, float, int]:
    """Seconds and peak RSS growth for a streamed download of the newest archive."""
    settings = Settings(
        data_dir=root,
        api_key_admin=ADMIN_KEY,
        server_data_dir=root / "serverdata",
        log_level="ERROR",
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}/api/v1alpha1/backups"
    headers = {"X-API-Key": ADMIN_KEY}
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        backup = httpx.get(base, headers=headers).json()["data"]["backups"][0]
        received = 0
        with RssPeak() as rss:
            began = time.perf_counter()
            with httpx.stream("GET", f"{base}/{backup['id']}/download", headers=headers) as resp:
                for chunk in resp.iter_bytes(MIB):
                    received += len(chunk)
            elapsed = time.perf_counter() - began
        assert received == backup["archive_bytes"]
    finally:
        server.should_exit = True
        thread.join(30)
    return elapsed, rss.growth_mib, received


def run(*, size_mib: int = 1024, rounds: int = 1) -> list[Row]:
    root = Path(tempfile.mkdtemp(prefix="vs-bench-backups-"))
    world = root / "serverdata" / "Saves" / "default.vcdbs"
    began = time.perf_counter()
    build_world(world, size_mib)
    built = time.perf_counter() - began
    hand: list[float] = []
    offline: list[float] = []
    running: list[float] = []
    growth: list[float] = []
    for _ in range(rounds):
        hand.append(by_hand(world, root))
        t, g = asyncio.run(_ours_offline(root))
        offline.append(t)
        growth.append(g)
        running.append(asyncio.run(_ours_running(root)))
    dl_seconds, dl_growth, dl_bytes = _download(root)
    detail: dict[str, object] = {"world_mib": size_mib, "build_seconds": round(built, 1)}
    shutil.rmtree(root, ignore_errors=True)
    baseline = min(hand)
    return [
        Row("backups", f"offline copy, {size_mib} MiB world", "s", min(offline), baseline,
            "by hand", "ratio_max", 1.3, rounds=rounds, detail=detail),
        Row("backups", f"running server (genbackup), {size_mib} MiB world", "s", min(running),
            baseline, "by hand", "ratio_max", 1.3, rounds=rounds, detail=detail),
        Row("backups", "RSS growth during the backup", "MiB", max(growth), float("nan"), "",
            "abs_max", 64, rounds=rounds),
        Row("backups", f"RSS growth during a {dl_bytes // MIB} MiB download", "MiB", dl_growth,
            float("nan"), "", "abs_max", 64, rounds=1,
            detail={"seconds": round(dl_seconds, 2)}),
    ]  # fmt: skip
