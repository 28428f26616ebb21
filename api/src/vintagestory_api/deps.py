"""Request-scoped accessors over `request.app.state`, and the auth dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.dependencies.models import Dependant
from fastapi.security import APIKeyHeader

from vintagestory_api.config import Settings
from vintagestory_api.errors import Forbidden, ServiceUnavailable, Unauthorized, ValidationFailed
from vintagestory_api.models.envelope import ApiResponse, JsonBodyCache
from vintagestory_api.models.jobs import JobList
from vintagestory_api.services.api_settings import ApiSettingsService
from vintagestory_api.services.job_control import JobControl
from vintagestory_api.services.keys import (
    API_KEY_HEADER,
    UNAUTHORIZED_MESSAGE,
    ApiKeys,
    Role,
    log_auth_failure,
    presented_key,
)
from vintagestory_api.services.metrics import MetricsService
from vintagestory_api.services.mods import ModsService
from vintagestory_api.services.prometheus import PrometheusMetrics
from vintagestory_api.services.scheduler import SchedulerService
from vintagestory_api.services.versions import VersionsService

# Every dependency here is `async def` although none awaits anything: FastAPI runs a plain `def`
# dependency in the thread pool, a thread hop per dependency per request for what is an
# attribute lookup. They must stay free of blocking I/O.

# Declares the header as an OpenAPI security scheme so /docs offers "Authorize". The value is
# read from the raw header bytes below, not from this (already decoded) string.
api_key_scheme = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    scheme_name="ApiKey",
    description="Admin or monitor API key",
)


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_scheduler(request: Request) -> SchedulerService:
    scheduler: SchedulerService = request.app.state.scheduler
    return scheduler


async def get_job_list_body(request: Request) -> JsonBodyCache[ApiResponse[JobList]]:
    cache: JsonBodyCache[ApiResponse[JobList]] = request.app.state.job_list_body
    return cache


async def get_metrics(request: Request) -> MetricsService:
    metrics: MetricsService = request.app.state.metrics
    return metrics


async def get_prometheus(request: Request) -> PrometheusMetrics:
    prometheus: PrometheusMetrics = request.app.state.prometheus
    return prometheus


async def get_job_control(request: Request) -> JobControl:
    control: JobControl = request.app.state.job_control
    return control


async def get_api_settings(request: Request) -> ApiSettingsService:
    service: ApiSettingsService = request.app.state.api_settings
    return service


async def get_versions(request: Request) -> VersionsService:
    versions: VersionsService | None = getattr(request.app.state, "versions", None)
    if versions is None:
        raise ServiceUnavailable("the versions service is not running")
    return versions


async def get_mods(request: Request) -> ModsService:
    mods: ModsService | None = getattr(request.app.state, "mods", None)
    if mods is None:
        raise ServiceUnavailable("the mods service is not running")
    return mods


async def get_role(request: Request, _: Annotated[str | None, Security(api_key_scheme)]) -> Role:
    """The caller's role, from `X-API-Key`; 401 when the key is missing or wrong."""
    keys: ApiKeys = request.app.state.api_keys
    presented = presented_key(request.scope.get("headers", ()))
    role = keys.role_for(presented) if presented else None
    if role is None:
        client = request.client.host if request.client else None
        log_auth_failure(client, request.method, request.url.path, presented)
        raise Unauthorized(UNAUTHORIZED_MESSAGE)
    return role


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
            f"query.{unknown[0]}: unknown query parameter (this route takes: {allowed})"
        )


async def require_admin(role: Annotated[Role, Depends(get_role)]) -> Role:
    if role is not Role.ADMIN:
        raise Forbidden("this operation needs the admin role")
    return role


SettingsDep = Annotated[Settings, Depends(get_settings)]
RoleDep = Annotated[Role, Depends(get_role)]
AdminDep = Annotated[Role, Depends(require_admin)]
SchedulerDep = Annotated[SchedulerService, Depends(get_scheduler)]
JobListBodyDep = Annotated[JsonBodyCache[ApiResponse[JobList]], Depends(get_job_list_body)]
ApiSettingsDep = Annotated[ApiSettingsService, Depends(get_api_settings)]
JobControlDep = Annotated[JobControl, Depends(get_job_control)]
MetricsDep = Annotated[MetricsService, Depends(get_metrics)]
PrometheusDep = Annotated[PrometheusMetrics, Depends(get_prometheus)]
VersionsDep = Annotated[VersionsService, Depends(get_versions)]
ModsDep = Annotated[ModsService, Depends(get_mods)]
