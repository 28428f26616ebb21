"""The app factory and its lifespan: the one place services are built, started and stopped."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager

import structlog
from fastapi import APIRouter, Depends, FastAPI
from fastapi_offline import FastAPIOffline

from vintagestory_api import __version__
from vintagestory_api.api_settings import router as api_settings_router
from vintagestory_api.api_settings.schemas import ApiSettings
from vintagestory_api.api_settings.service import API_SETTINGS_FILE, ApiSettingsService
from vintagestory_api.auth import router as auth_router
from vintagestory_api.auth.deps import get_role
from vintagestory_api.auth.errors import Unauthorized
from vintagestory_api.auth.keys import load_api_keys
from vintagestory_api.auth.middleware import ApiKeyMiddleware
from vintagestory_api.auth.tokens import WsTokens
from vintagestory_api.backups import jobs as backups_jobs
from vintagestory_api.backups import router as backups_router
from vintagestory_api.backups.service import BackupService
from vintagestory_api.config import Settings
from vintagestory_api.errors import (
    ApiError,
    ValidationFailed,
    error_responses,
    install_error_handlers,
    keep_legacy_error_schemas,
)
from vintagestory_api.gameserver import router as gameserver_router
from vintagestory_api.gameserver.exits import Timings
from vintagestory_api.gameserver.install import ModCheck, build_installer
from vintagestory_api.gameserver.launch import LaunchConfig
from vintagestory_api.gameserver.process import Launcher
from vintagestory_api.gameserver.schemas import IncompatibleMod
from vintagestory_api.gameserver.service import GameServerService
from vintagestory_api.health import router as health_router
from vintagestory_api.health.disk import DiskProbe
from vintagestory_api.kit.cors import EnvelopeCorsMiddleware
from vintagestory_api.kit.envelope import ApiResponse, JsonBodyCache
from vintagestory_api.kit.head_requests import HeadAsGetMiddleware
from vintagestory_api.kit.http import create_http_client
from vintagestory_api.kit.instance_lock import InstanceLock
from vintagestory_api.kit.query_params import reject_unknown_query_params
from vintagestory_api.kit.request_id import RequestIdMiddleware
from vintagestory_api.kit.request_limits import RequestLimitsMiddleware
from vintagestory_api.kit.startup import OneLineStartupFailure, StartupRefused
from vintagestory_api.kit.state_files import remove_stale_temp_files
from vintagestory_api.metrics import jobs as metrics_jobs
from vintagestory_api.metrics import router as metrics_router
from vintagestory_api.metrics.service import MetricsService, build_metrics
from vintagestory_api.mods import jobs as mods_jobs
from vintagestory_api.mods import router as mods_router
from vintagestory_api.mods.manager import ModManager, build_mod_manager
from vintagestory_api.mods.service import build_mods_service
from vintagestory_api.scheduler import router as scheduler_router
from vintagestory_api.scheduler.factory import build_scheduler
from vintagestory_api.scheduler.schemas import JobList
from vintagestory_api.schedules import router as schedules_router
from vintagestory_api.schedules.adapters import (
    ScheduledBackups,
    ScheduledInstalls,
    ScheduledModUpdates,
)
from vintagestory_api.schedules.executor import Executor
from vintagestory_api.schedules.service import SchedulesService
from vintagestory_api.schedules.store import SCHEDULES_FILE, SchedulesStore
from vintagestory_api.versions import jobs as versions_jobs
from vintagestory_api.versions import router as versions_router
from vintagestory_api.versions.service import build_versions_service

logger = structlog.get_logger()

API_PREFIX = "/api/v1alpha1"
SCHEDULER_LOCK_FILE = "scheduler.lock"
BACKUPS_DIR = "backups"

OPENAPI_TAGS = [
    {"name": "health", "description": "Liveness and readiness probes (no key needed)."},
    {
        "name": "auth",
        "description": "Which role the presented API key has; single-use tokens for WebSockets.",
    },
    {
        "name": "jobs",
        "description": "Every scheduled job: its schedule, state and runs; run now, pause, "
        "resume, reschedule, remove (admin only).",
    },
    {
        "name": "triggers",
        "description": "Preview a schedule's fire times and warnings without scheduling it.",
    },
    {"name": "config", "description": "The API's own settings (monitor reads, admin changes)."},
    {
        "name": "versions",
        "description": "Game versions published for each channel, and whether an update is out.",
    },
    {
        "name": "mods",
        "description": "Installed mods and their updates for the installed game version; "
        "install, update, enable, disable, remove, roll back and upload them (admin).",
    },
    {
        "name": "server",
        "description": "The game server: state, start, stop, restart, install, update and "
        "rollback, lifecycle events, console and players.",
    },
    {
        "name": "backups",
        "description": "World backups: take (a run of world_backup), list, download, pin, "
        "delete, restore (a run of world_restore).",
    },
    {
        "name": "schedules",
        "description": "Admin schedules (restarts with countdowns, player-aware gating, chains "
        "of steps that wait for completion), their occurrences, the timeline, export and "
        "import, and maintenance holds (monitor reads, admin changes).",
    },
    {
        "name": "metrics",
        "description": "Resource samples of the API, game server, host and disk (admin only), "
        "and the Prometheus exposition at /metrics (no key).",
    },
]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Build, start and (in reverse order, whatever fails) stop everything the API runs."""
    settings: Settings = app.state.settings
    _make_data_dirs(settings)
    app.state.disk = DiskProbe(settings.data_dir, min_free_bytes=settings.min_free_disk_bytes)
    async with AsyncExitStack() as stack:
        # One scheduler per data dir: a second instance would run every job a second time.
        # A lock that is taken or unusable refuses the start (StartupRefused, one log line).
        lock = InstanceLock(settings.state_dir / SCHEDULER_LOCK_FILE)
        lock.acquire()
        stack.callback(lock.release)
        app.state.api_keys = load_api_keys(settings)
        app.state.ws_tokens = WsTokens()
        # Only once this process owns the data dir may it touch temp files and state.
        remove_stale_temp_files(settings.state_dir)
        # Before the scheduler: the built-in jobs' intervals and pause flags come from these.
        api_settings = ApiSettingsService.load(settings.state_dir / API_SETTINGS_FILE)
        app.state.api_settings = api_settings

        http_client = create_http_client(settings)
        stack.push_async_callback(http_client.aclose)
        # Built before the metrics, which sample the process it supervises and expose its state
        # and counters, and before the versions and mods services, which ask it what is
        # installed; started (when set to) once everything else runs, and stopped first, before
        # the scheduler.
        gameserver = app.state.gameserver = build_game_server(settings, api_settings)
        installed = gameserver.installed_version
        app.state.versions = build_versions_service(settings, http_client, installed)
        app.state.mods = build_mods_service(settings, http_client, installed)
        # Changes the mods: asks the game server for its version, holds its lifecycle while
        # files move, and tells it when a running process is out of date.
        app.state.mod_manager = build_mod_manager(settings, http_client, app.state.mods, gameserver)
        await app.state.mod_manager.start()

        scheduling = build_scheduler(settings, api_settings)
        stack.push_async_callback(scheduling.close)
        scheduler = app.state.scheduler = scheduling.service
        app.state.job_state = scheduling.job_state
        # Metrics watch the scheduler before any job is registered, so no run goes uncounted.
        app.state.metrics, app.state.prometheus = build_metrics(
            settings.data_dir,
            scheduler,
            interval_seconds=api_settings.settings.metrics_collection_interval,
            retention_minutes=api_settings.settings.metrics_retention_minutes,
            game_server=gameserver,
        )
        app.state.http_metrics = app.state.prometheus
        api_settings.add_listener(_resize_metrics(app.state.metrics))
        await scheduler.start()
        stack.push_async_callback(scheduler.shutdown)
        backups = app.state.backups = BackupService(
            settings.data_dir / BACKUPS_DIR,
            settings.game_data_dir,
            gameserver,
            api_settings,
            timezone=scheduler.default_timezone,
            min_free_bytes=settings.min_free_disk_bytes,
        )
        backups.open()
        # The versions service tells the installer what each version's download is; the
        # backups service backs the world up before every switch.
        installer = build_installer(
            settings,
            gameserver,
            http_client,
            app.state.versions,
            backups.before_version_switch,
            _mod_check(app.state.mod_manager),
        )
        app.state.installer = installer
        await installer.start()

        # Every domain's built-in jobs, listed here explicitly: nothing registers itself.
        app.state.job_control = scheduling.register_builtin_jobs(
            [
                *versions_jobs.builtin_jobs(app.state.versions),
                *mods_jobs.builtin_jobs(app.state.mods),
                *metrics_jobs.builtin_jobs(app.state.metrics),
                *backups_jobs.builtin_jobs(backups),
            ]
        )
        # Admin schedules are jobs too; registered after the built-in ones, their pause flags
        # from the same job state; their backup and install steps call those services.
        schedules = app.state.schedules = SchedulesService(
            SchedulesStore.load(settings.state_dir / SCHEDULES_FILE),
            scheduler,
            Executor(
                gameserver,
                backups=ScheduledBackups(backups),
                installer=ScheduledInstalls(installer),
                mods=ScheduledModUpdates(app.state.mod_manager),
            ),
            is_paused=scheduling.job_state.is_paused,
        )
        await schedules.start()
        # Last in, first out: on shutdown the game server is stopped the graceful way (its world
        # saved) while everything else still runs.
        stack.push_async_callback(gameserver.close)
        # Before that: an install under way is cancelled, then the server is stopped.
        stack.push_async_callback(installer.close)
        if api_settings.settings.server_auto_start:
            await _auto_start(gameserver)
        app.state.ready = True
        logger.info(
            "api_started",
            version=__version__,
            data_dir=str(settings.data_dir.resolve()),
            host=settings.host,
            port=settings.port,
        )
        try:
            yield
        finally:
            app.state.ready = False
    logger.info("api_stopped")


def _mod_check(mods: ModManager) -> ModCheck:
    async def check(game_version: str) -> list[IncompatibleMod]:
        found = await mods.incompatible_with(game_version)
        return [IncompatibleMod.model_validate(m.model_dump()) for m in found]

    return check


def _make_data_dirs(settings: Settings) -> None:
    for directory in (settings.data_dir, settings.state_dir):
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            reason = (exc.strerror or str(exc)).lower()
            raise StartupRefused(
                f"cannot create the data directory {directory}: {reason}; set VS_DATA_DIR to a "
                "directory this user may write",
                path=str(directory),
            ) from None


def build_game_server(
    settings: Settings,
    api_settings: ApiSettingsService,
    launcher: Launcher | None = None,
) -> GameServerService:
    config = LaunchConfig(
        server_dir=settings.game_server_dir,
        data_path=settings.game_data_dir,
        command=settings.server_command,
        port=settings.server_port,
    )

    def timings() -> Timings:
        # Read at each use, so a PATCH /config/api applies to the next start or stop.
        current = api_settings.settings
        return Timings(
            start_timeout=current.server_start_timeout_seconds,
            stop_timeout=current.server_stop_timeout_seconds,
            kill_timeout=current.server_kill_timeout_seconds,
            backoff=current.server_restart_backoff_seconds,
            auto_restart=current.server_auto_restart,
        )

    return GameServerService(
        config,
        timings,
        launcher=launcher,
        players_poll_seconds=settings.server_players_poll_seconds,
    )


async def _auto_start(gameserver: GameServerService) -> None:
    try:
        await gameserver.start("auto_start")
    except ApiError as exc:
        # Not a reason to refuse the API: an admin can see why and fix it over the API.
        logger.error("game_server_auto_start_failed", code=exc.code, error=exc.message)


def _resize_metrics(
    metrics: MetricsService,
) -> Callable[[ApiSettings, ApiSettings], Awaitable[None]]:
    async def resize(_: ApiSettings, new: ApiSettings) -> None:
        metrics.resize(new.metrics_collection_interval, new.metrics_retention_minutes)

    return resize


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application; nothing starts until the lifespan runs."""
    settings = settings if settings is not None else Settings()
    app = FastAPIOffline(
        title="Vintage Story server management API",
        version=__version__,
        description=(
            "Keeps a Vintage Story dedicated server up to date, measures it, and runs recurring "
            "work on a schedule you can see and steer. Authenticate with the `X-API-Key` header "
            "(click **Authorize**): the admin key may do everything, the monitor key may read."
        ),
        openapi_tags=OPENAPI_TAGS,
        lifespan=lifespan,
        # Starlette redirected `/healthz/` to a Location built from the caller's Host header
        # (an open redirect); a trailing slash is a 404 saying to remove it instead.
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.ready = False
    # GET /jobs as JSON bytes, kept between changes of the scheduler's jobs (keyed by the
    # scheduler object as well, so a lifespan run again never sees the last one's jobs).
    app.state.job_list_body = JsonBodyCache(ApiResponse[JobList])
    install_error_handlers(app)
    keep_legacy_error_schemas(app)

    # Every route under the versioned prefix needs a key; admin-only routes add AdminDep.
    api = APIRouter(
        prefix=API_PREFIX,
        dependencies=[Depends(get_role), Depends(reject_unknown_query_params)],
        # Any route under the prefix can answer 422 (an unknown query parameter, at least).
        responses=error_responses(Unauthorized, ValidationFailed),
    )
    api.include_router(auth_router.router)
    api.include_router(scheduler_router.router)
    api.include_router(scheduler_router.triggers_router)
    api.include_router(api_settings_router.router)
    api.include_router(versions_router.router)
    api.include_router(mods_router.router)
    api.include_router(metrics_router.router)
    api.include_router(gameserver_router.router)
    api.include_router(backups_router.router)
    api.include_router(schedules_router.router)
    api.include_router(schedules_router.holds_router)
    app.include_router(health_router.router)
    app.include_router(metrics_router.prometheus_router)
    app.include_router(api)
    # WebSockets authenticate themselves after accepting (gameserver/router.py says why), so
    # they are not under `api` and its HTTP-only dependencies.
    app.include_router(gameserver_router.ws_router, prefix=API_PREFIX)

    # The last added is the outermost. From the outside in: request id (which also answers
    # unexpected exceptions), HEAD, CORS, request limits, key check.
    # A missing or wrong key is answered before the body is even read (see the module).
    app.add_middleware(ApiKeyMiddleware, prefix=API_PREFIX)
    # Before the key check, so no oversized body is read whoever sends it; inside CORS, so a
    # browser can read the 413.
    app.add_middleware(
        RequestLimitsMiddleware,
        max_body_bytes=settings.max_body_bytes,
        # Path prefix -> cap for routes that need more than VS_MAX_BODY_BYTES (uploads): a mod
        # archive as large as a download may be, plus the multipart framing around it.
        larger_bodies={f"{API_PREFIX}/mods/upload": settings.mod_max_download_bytes + 64 * 1024},
    )
    if settings.cors_origins:
        app.add_middleware(
            EnvelopeCorsMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["X-API-Key", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID"],
        )
    # Outside the other layers that answer (CORS, limits, key check): to a HEAD, every answer
    # is headers only.
    app.add_middleware(HeadAsGetMiddleware)
    # Added late = outside: the request id is bound before anything else logs or measures.
    app.add_middleware(RequestIdMiddleware)
    # Outermost, and only for the lifespan: a failed startup is one log line, not a traceback.
    app.add_middleware(OneLineStartupFailure)
    return app
