"""Request-scoped accessors over `request.app.state`, and the auth dependencies."""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from vintagestory_api.config import Settings
from vintagestory_api.errors import Forbidden, ServiceUnavailable, Unauthorized
from vintagestory_api.services.api_settings import ApiSettingsService
from vintagestory_api.services.job_control import JobControl
from vintagestory_api.services.keys import ApiKeys, Role
from vintagestory_api.services.metrics import MetricsService
from vintagestory_api.services.mods import ModsService
from vintagestory_api.services.prometheus import PrometheusMetrics
from vintagestory_api.services.scheduler import SchedulerService
from vintagestory_api.services.versions import VersionsService

logger = structlog.get_logger()

API_KEY_HEADER = "X-API-Key"

# Declares the header as an OpenAPI security scheme so /docs offers "Authorize". The value is
# read from the raw header bytes below, not from this (already decoded) string.
api_key_scheme = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    scheme_name="ApiKey",
    description="Admin or monitor API key",
)


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_scheduler(request: Request) -> SchedulerService:
    scheduler: SchedulerService = request.app.state.scheduler
    return scheduler


def get_metrics(request: Request) -> MetricsService:
    metrics: MetricsService = request.app.state.metrics
    return metrics


def get_prometheus(request: Request) -> PrometheusMetrics:
    prometheus: PrometheusMetrics = request.app.state.prometheus
    return prometheus


def get_job_control(request: Request) -> JobControl:
    control: JobControl = request.app.state.job_control
    return control


def get_api_settings(request: Request) -> ApiSettingsService:
    service: ApiSettingsService = request.app.state.api_settings
    return service


def _presented_key(request: Request) -> bytes | None:
    wanted = API_KEY_HEADER.lower().encode()
    for name, value in request.scope.get("headers", ()):
        if name == wanted:
            return bytes(value)
    return None


def get_versions(request: Request) -> VersionsService:
    versions: VersionsService | None = getattr(request.app.state, "versions", None)
    if versions is None:
        raise ServiceUnavailable("the versions service is not running")
    return versions


def get_mods(request: Request) -> ModsService:
    mods: ModsService | None = getattr(request.app.state, "mods", None)
    if mods is None:
        raise ServiceUnavailable("the mods service is not running")
    return mods


def get_role(request: Request, _: Annotated[str | None, Security(api_key_scheme)]) -> Role:
    """The caller's role, from `X-API-Key`; 401 when the key is missing or wrong."""
    keys: ApiKeys = request.app.state.api_keys
    presented = _presented_key(request)
    role = keys.role_for(presented) if presented else None
    if role is None:
        client = request.client.host if request.client else None
        logger.warning(
            "auth_failed",
            client=client,
            method=request.method,
            path=request.url.path,
            reason="missing key" if presented is None else "wrong key",
        )
        raise Unauthorized("missing or invalid API key in the X-API-Key header")
    return role


def require_admin(role: Annotated[Role, Depends(get_role)]) -> Role:
    if role is not Role.ADMIN:
        raise Forbidden("this operation needs the admin role")
    return role


SettingsDep = Annotated[Settings, Depends(get_settings)]
RoleDep = Annotated[Role, Depends(get_role)]
AdminDep = Annotated[Role, Depends(require_admin)]
SchedulerDep = Annotated[SchedulerService, Depends(get_scheduler)]
ApiSettingsDep = Annotated[ApiSettingsService, Depends(get_api_settings)]
JobControlDep = Annotated[JobControl, Depends(get_job_control)]
MetricsDep = Annotated[MetricsService, Depends(get_metrics)]
PrometheusDep = Annotated[PrometheusMetrics, Depends(get_prometheus)]
VersionsDep = Annotated[VersionsService, Depends(get_versions)]
ModsDep = Annotated[ModsService, Depends(get_mods)]
