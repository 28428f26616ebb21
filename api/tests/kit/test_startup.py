"""A failed startup is reported in one line, through the ASGI lifespan messages uvicorn prints."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.types import ASGIApp
from structlog.testing import capture_logs

from tests.support.keys import ADMIN_KEY, MONITOR_KEY
from tests.support.offline import offline_settings
from vintagestory_api.app import create_app
from vintagestory_api.kit.startup import OneLineStartupFailure, StartupRefused


async def _start(app: ASGIApp) -> tuple[list[MutableMapping[str, Any]], BaseException | None]:
    """Drive the lifespan protocol as a server does; returns what the app sent and raised."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return await inbox.get()

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "lifespan.startup.complete":
            await inbox.put({"type": "lifespan.shutdown"})

    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    try:
        await app(scope, receive, send)
    except BaseException as exc:
        return sent, exc
    return sent, None


def _failing(exc: BaseException) -> Starlette:
    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        raise exc
        yield

    return Starlette(lifespan=lifespan)


# The server gets no text of its own to print: Starlette's would be the whole traceback.
FAILED_WITHOUT_TEXT = {"type": "lifespan.startup.failed", "message": ""}


async def test_refusal_is_logged_as_one_line_with_its_own_message() -> None:
    refusal = StartupRefused("cannot open /x/scheduler.lock: is a directory; remove it")
    with capture_logs() as logs:
        sent, raised = await _start(OneLineStartupFailure(_failing(refusal)))
    assert raised is refusal
    assert sent == [FAILED_WITHOUT_TEXT]
    assert logs == [
        {
            "event": "startup_refused",
            "log_level": "error",
            "message": "cannot open /x/scheduler.lock: is a directory; remove it",
        }
    ]


async def test_unexpected_failure_is_one_line_naming_the_exception() -> None:
    with capture_logs() as logs:
        sent, raised = await _start(OneLineStartupFailure(_failing(RuntimeError("boom\nmore"))))
    assert isinstance(raised, RuntimeError)
    assert sent == [FAILED_WITHOUT_TEXT]
    errors = [entry for entry in logs if entry["log_level"] == "error"]
    assert errors == [
        {
            "event": "startup_failed",
            "log_level": "error",
            "message": "startup failed: RuntimeError: boom more",
        }
    ]
    # The traceback is there for whoever turns on debug logging, and only then.
    (debug,) = [entry for entry in logs if entry["log_level"] == "debug"]
    assert debug["exc_info"] is raised


async def test_successful_startup_and_shutdown_pass_through() -> None:
    sent, raised = await _start(OneLineStartupFailure(Starlette()))
    assert raised is None
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_app_reports_a_data_dir_it_cannot_create_in_one_line(tmp_path: Path) -> None:
    settings = offline_settings(tmp_path / "data", admin_key=ADMIN_KEY, monitor_key=MONITOR_KEY)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    app = create_app(settings.model_copy(update={"data_dir": blocker / "data"}))
    with capture_logs() as logs:
        sent, raised = await _start(app)
    assert isinstance(raised, StartupRefused)
    assert sent == [FAILED_WITHOUT_TEXT]
    (line,) = [entry["message"] for entry in logs if entry["log_level"] == "error"]
    assert str(blocker / "data") in line
    assert "VS_DATA_DIR" in line
