"""Route dependencies of the metrics domain."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from .prometheus import PrometheusMetrics
from .service import MetricsService


async def get_metrics(request: Request) -> MetricsService:
    metrics: MetricsService = request.app.state.metrics
    return metrics


async def get_prometheus(request: Request) -> PrometheusMetrics:
    prometheus: PrometheusMetrics = request.app.state.prometheus
    return prometheus


MetricsDep = Annotated[MetricsService, Depends(get_metrics)]
PrometheusDep = Annotated[PrometheusMetrics, Depends(get_prometheus)]
