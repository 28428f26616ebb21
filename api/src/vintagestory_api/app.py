"""The app factory and its lifespan: the one place services are built, started and stopped."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import APIRouter, Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline

from vintagestory_api import __version__
from vintagestory_api.config import Settings
from vintagestory_api.deps import get_role
from vintagestory_api.errors import install_error_handlers
from vintagestory_api.middleware.request_id import RequestIdMiddleware
from vintagestory_api.models.envelope import error_responses
from vintagestory_api.routers import auth, health
from vintagestory_api.services.keys import load_api_keys

logger = structlog.get_logger()

API_PREFIX = "/api/v1alpha1"

OPENAPI_TAGS = [
    {"name": "health", "description": "Liveness and readiness probes (no key needed)."},
    {"name": "auth", "description": "Which role the presented API key has."},
]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    for directory in (settings.data_dir, settings.state_dir):
        directory.mkdir(parents=True, exist_ok=True)
    app.state.api_keys = load_api_keys(settings)
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
    )
    app.state.settings = settings
    app.state.ready = False
    install_error_handlers(app)

    # Every route under the versioned prefix needs a key; admin-only routes add AdminDep.
    api = APIRouter(
        prefix=API_PREFIX,
        dependencies=[Depends(get_role)],
        responses=error_responses(401),
    )
    api.include_router(auth.router)
    app.include_router(health.router)
    app.include_router(api)

    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["X-API-Key", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID"],
        )
    app.add_middleware(RequestIdMiddleware)
    return app
