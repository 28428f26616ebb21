"""Refusing query parameters a route does not take."""

from __future__ import annotations

from fastapi import Request
from fastapi.dependencies.models import Dependant

from vintagestory_api.errors import ValidationFailed, clip


def _query_names(dependant: Dependant) -> set[str]:
    names: set[str] = set()
    pending = [dependant]
    while pending:
        current = pending.pop()
        names.update(param.alias for param in current.query_params)
        pending.extend(current.dependencies)
    return names


async def reject_unknown_query_params(request: Request) -> None:
    """422 for a query parameter the route does not take: `?chanel=unstable` silently answering
    for the default channel would hide the typo."""
    dependant = getattr(request.scope.get("route"), "dependant", None)
    if not isinstance(dependant, Dependant) or not request.query_params:
        return
    unknown = sorted(set(request.query_params) - _query_names(dependant))
    if unknown:
        allowed = ", ".join(sorted(_query_names(dependant))) or "none"
        raise ValidationFailed(
            f"query.{clip(unknown[0])}: unknown query parameter (this route takes: {allowed})"
        )
