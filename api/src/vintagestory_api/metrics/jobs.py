"""The `metrics_collection` job: one resource sample into the ring."""

from __future__ import annotations

from vintagestory_api.scheduler.builtin import BuiltinJob

from .service import MetricsService


async def metrics_collection(metrics: MetricsService) -> dict[str, object]:
    sample = await metrics.sample()
    # The run's result is a summary for the runs list, not the sample (that is in /metrics).
    return {
        "samples_kept": len(metrics),
        "capacity": metrics.capacity,
        "game_server_running": sample.game_server is not None,
    }


def builtin_jobs(metrics: MetricsService) -> list[BuiltinJob]:
    return [
        BuiltinJob(
            id="metrics_collection",
            func=metrics_collection,
            args=(metrics,),
            setting="metrics_collection_interval",
            name="Metrics sampling",
            description="Samples API, game server, host and disk usage into the metrics history",
            # An admin opening /metrics/current right after startup should see data, not null
            # for a whole interval.
            run_immediately=True,
            # Every 10 s: two info lines per sample would be most of the log at idle.
            quiet=True,
        )
    ]
