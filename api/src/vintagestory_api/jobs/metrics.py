"""The `metrics_collection` job: one resource sample into the ring."""

from __future__ import annotations

from vintagestory_api.services.metrics import MetricsService


async def metrics_collection(metrics: MetricsService) -> dict[str, object]:
    sample = await metrics.sample()
    # The run's result is a summary for the runs list, not the sample (that is in /metrics).
    return {
        "samples_kept": len(metrics),
        "capacity": metrics.capacity,
        "game_server_running": sample.game_server is not None,
    }
