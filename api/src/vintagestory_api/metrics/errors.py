"""Errors of the metrics routes."""

from __future__ import annotations

from vintagestory_api.errors import ApiError, ValidationFailed


class MetricsError(ApiError):
    """Base of the metrics domain's errors."""


class MetricsWindowTooLong(MetricsError, ValidationFailed):
    """A history window longer than the live retention setting (valid by schema, not by state)."""

    code = "METRICS_WINDOW_TOO_LONG"
    example = "query.minutes: must be at most the retention of 1440 minutes"
