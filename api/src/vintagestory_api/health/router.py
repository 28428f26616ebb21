"""Liveness and readiness probes; no key needed, same envelope as everything else."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from vintagestory_api import __version__
from vintagestory_api.config import Settings
from vintagestory_api.kit.envelope import ApiResponse, ok
from vintagestory_api.kit.schemas import ComponentHealth
from vintagestory_api.scheduler.schemas import SchedulerHealth

from .disk import DiskProbe, disk_health, judged
from .schemas import DiskHealth, HealthData, ReadyData

router = APIRouter(tags=["health"])


def _scheduler_health(request: Request) -> SchedulerHealth:
    scheduler = getattr(request.app.state, "scheduler", None)
    if scheduler is None:
        return SchedulerHealth(status="stopped", job_count=0, running_jobs=0)
    health: SchedulerHealth = scheduler.health()
    return health


# What on app.state keeps a state file, each answering `state_file_health()`: the keys, the
# operator settings, the job state, the two caches, the schedules.
_STATE_FILE_OWNERS = ("api_keys", "api_settings", "job_state", "versions", "mods", "schedules")


def _state_files(request: Request) -> dict[str, ComponentHealth]:
    files: dict[str, ComponentHealth] = {}
    for name in _STATE_FILE_OWNERS:
        owner = getattr(request.app.state, name, None)
        if owner is not None:
            files.update(owner.state_file_health())
    return dict(sorted(files.items()))


def _settings_health(request: Request) -> ComponentHealth:
    # The operator settings and the persisted job state: what an admin decided, kept on disk.
    for name in ("api_settings", "job_state"):
        service = getattr(request.app.state, name, None)
        health: ComponentHealth | None = service.health if service is not None else None
        if health is not None and health.status != "ok":
            return health
    return ComponentHealth(status="ok")


def _game_server(request: Request) -> ComponentHealth | None:
    gameserver = getattr(request.app.state, "gameserver", None)
    if gameserver is None:
        return None
    health: ComponentHealth = gameserver.health()
    return health


def _backups(request: Request) -> ComponentHealth | None:
    backups = getattr(request.app.state, "backups", None)
    if backups is None:
        return None
    health: ComponentHealth = backups.health()
    return health


def _disk(request: Request) -> DiskHealth | None:
    # The lifespan builds the cached probe; before it has run, read the disk directly. The
    # settings are read from the app here rather than through SettingsDep: a dependency costs
    # FastAPI a resolution step on every probe, and only this fallback needs them.
    probe: DiskProbe | None = getattr(request.app.state, "disk", None)
    if probe is None:
        settings: Settings = request.app.state.settings
        return judged(disk_health(str(settings.data_dir.resolve())), settings.min_free_disk_bytes)
    return probe.read()


@router.get(
    "/healthz",
    summary="Liveness: is the API up, and how are its parts",
    description="Always 200 while the API answers; `status` in the body is `degraded` when a "
    "part needs attention (each part says why in its `reason`).",
)
async def healthz(request: Request) -> ApiResponse[HealthData]:
    scheduler = _scheduler_health(request)
    disk = _disk(request)
    files = _state_files(request)
    game_server = _game_server(request)
    backups = _backups(request)
    degraded = (
        (game_server is not None and game_server.status != "ok")
        or (backups is not None and backups.status != "ok")
        or scheduler.status != "running"
        or scheduler.run_history.status != "ok"
        or (disk is not None and disk.status != "ok")
        or any(entry.status != "ok" for entry in files.values())
    )
    return ok(
        HealthData(
            status="degraded" if degraded else "ok",
            version=__version__,
            scheduler=scheduler,
            disk=disk,
            settings=_settings_health(request),
            state_files=files,
            game_server=game_server,
            backups=backups,
        )
    )


@router.get(
    "/readyz",
    summary="Readiness: 200 when the API can serve, 503 when not",
    responses={503: {"model": ApiResponse[ReadyData], "description": "Not ready"}},
)
async def readyz(request: Request, response: Response) -> ApiResponse[ReadyData]:
    checks = {
        "startup_complete": bool(getattr(request.app.state, "ready", False)),
        "scheduler_running": _scheduler_health(request).status == "running",
    }
    ready = all(checks.values())
    if not ready:
        # Same envelope, different status: probes look at the code, humans at the checks.
        response.status_code = 503
    return ok(ReadyData(ready=ready, checks=checks))
