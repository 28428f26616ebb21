"""A startup that fails says why in one line, never with a traceback an operator must read.

Starlette answers a lifespan that raised with `lifespan.startup.failed` carrying the whole
traceback as `message`, and uvicorn logs that text as is. `OneLineStartupFailure` sits outside
the app and logs one event instead: a `StartupRefused` with its own message (which names the
file and the fix), anything else as `startup failed: <type>: <message>` with its traceback at
debug level only. The message it passes on to the server is then empty, so the server adds
nothing but its own "startup failed" line.
"""

from __future__ import annotations

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = structlog.get_logger()

_FAILED = "lifespan.startup.failed"


class StartupRefused(Exception):
    """Starting would lose data or security; the message says which file and what to do.

    `event` and `fields` are what the one log line carries besides the message.
    """

    event = "startup_refused"

    def __init__(self, message: str, **fields: str) -> None:
        super().__init__(message)
        self.fields = fields


def one_line(exc: BaseException) -> str:
    """What an operator reads about a failed startup: a single line."""
    if isinstance(exc, StartupRefused):
        text = str(exc)
    else:
        text = f"startup failed: {type(exc).__name__}: {exc}"
    return " ".join(text.split())


def _log(exc: BaseException) -> None:
    if isinstance(exc, StartupRefused):
        logger.error(exc.event, message=one_line(exc), **exc.fields)
        return
    logger.error("startup_failed", message=one_line(exc))
    logger.debug("startup_failed_traceback", exc_info=exc)


class OneLineStartupFailure:
    """Pure ASGI wrapper; only the lifespan scope is touched, requests pass straight through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        held: list[Message] = []

        async def hold_failure(message: Message) -> None:
            # Starlette sends this and then raises; the message waits for the exception.
            if message["type"] == _FAILED:
                held.append(message)
                return
            await send(message)

        try:
            await self.app(scope, receive, hold_failure)
        except BaseException as exc:
            if held:
                _log(exc)
                await send({"type": _FAILED, "message": ""})
            raise
        if held:
            # Failed without raising (not Starlette's way): pass on what the app said.
            await send(held[0])
