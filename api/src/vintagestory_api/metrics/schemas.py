"""Resource samples of the API process, the game server, the host and the data directory."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class ProcessSample(BaseModel):
    pid: int
    rss_mib: float = Field(description="Resident memory in MiB")
    cpu_percent: float | None = Field(
        description=(
            "CPU use since the previous sample, in percent of one core (may exceed 100 on "
            "several cores); null on the first sample of a process"
        )
    )
    open_files: int | None = Field(
        description="Open file descriptors, sockets included (handles on Windows); null if unknown"
    )
    threads: int


class HostSample(BaseModel):
    memory_used_mib: float
    memory_total_mib: float
    memory_percent: float
    load_average: tuple[float, float, float] | None = Field(
        description="1, 5 and 15 minute load averages; null where the platform has none"
    )
    cpu_count: int | None


class DiskSample(BaseModel):
    path: str
    used_bytes: int
    free_bytes: int
    total_bytes: int


class MetricsSample(BaseModel):
    timestamp: datetime = Field(description="When the sample was taken (UTC)")
    api: ProcessSample = Field(description="This API's own process")
    game_server: ProcessSample | None = Field(
        description="The game server process the API supervises; null when not running"
    )
    players_online: int | None = Field(
        ge=0, description="Players on the game server; null when it is not running"
    )
    host: HostSample
    disk: DiskSample | None = Field(description="The data directory's filesystem")


class MetricsHistory(BaseModel):
    interval_seconds: int = Field(description="Seconds between samples; 0 when sampling is off")
    retention_minutes: int
    minutes: int = Field(description="The window asked for")
    samples: list[MetricsSample] = Field(description="Oldest first")
