"""Resource samples for admins, and the Prometheus scrape endpoint."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from vintagestory_api.api_settings.schemas import MAX_METRICS_RETENTION_MINUTES
from vintagestory_api.auth.deps import AdminDep
from vintagestory_api.auth.errors import Forbidden
from vintagestory_api.errors import ValidationFailed, error_responses
from vintagestory_api.kit.envelope import ApiResponse, ok

from .deps import MetricsDep, PrometheusDep
from .errors import MetricsWindowTooLong
from .prometheus import CONTENT_TYPE
from .schemas import MetricsHistory, MetricsSample

# Admin only: samples reveal host memory, load and disk layout.
router = APIRouter(prefix="/metrics", tags=["metrics"], responses=error_responses(Forbidden))

# Unauthenticated, like /healthz: scrapers rarely carry per-target secrets, and the exposition
# holds counts and timings only, no secrets and no raw paths.
prometheus_router = APIRouter(tags=["metrics"])


@router.get("/current", summary="The newest resource sample; null before the first")
async def current(metrics: MetricsDep, _: AdminDep) -> ApiResponse[MetricsSample | None]:
    return ok(metrics.current())


@router.get(
    "/history",
    summary="Resource samples of the last N minutes, oldest first",
    responses=error_responses(MetricsWindowTooLong, ValidationFailed),
)
async def history(
    metrics: MetricsDep,
    _: AdminDep,
    minutes: Annotated[
        int | None,
        Query(
            ge=1,
            le=MAX_METRICS_RETENTION_MINUTES,
            description="Window in minutes, at most the current retention; default all of it",
        ),
    ] = None,
) -> ApiResponse[MetricsHistory]:
    retention = metrics.retention_minutes
    if minutes is None:
        minutes = retention
    elif minutes > retention:
        # The live bound is a setting; the static `le=` above is only the largest it can be.
        raise MetricsWindowTooLong(
            f"query.minutes: must be at most the retention of {retention} minutes"
        )
    return ok(
        MetricsHistory(
            interval_seconds=metrics.interval_seconds,
            retention_minutes=retention,
            minutes=minutes,
            samples=metrics.history(minutes),
        )
    )


@prometheus_router.get(
    "/metrics",
    summary="Prometheus exposition (text format); no key needed",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format 0.0.4",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
async def prometheus_metrics(prometheus: PrometheusDep) -> Response:
    return Response(prometheus.render(), media_type=CONTENT_TYPE)
