"""How a job says its run ended other than by returning: skipped, cancelled, or failed with a
result to keep (e.g. the steps done before the failing one)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

EndedOutcome = Literal["skipped", "cancelled", "failed"]


class RunEnded(Exception):
    """Raised by a job function: its run is recorded with `outcome`, `reason` and `result`."""

    def __init__(
        self, outcome: EndedOutcome, reason: str, result: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(reason)
        self.outcome: EndedOutcome = outcome
        self.reason = reason
        self.result = result
