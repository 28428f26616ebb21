"""`python -m vintagestory_api`: validate settings, configure logging, serve with uvicorn."""

from __future__ import annotations

import socket
import sys
from types import FrameType

import uvicorn
from pydantic import ValidationError

from vintagestory_api.config import Settings
from vintagestory_api.kit.http_protocol import http_protocol
from vintagestory_api.logging import configure_logging


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGINT/SIGTERM after a graceful shutdown, so the process dies with
    128+signal. A drained, clean stop is a success for a service manager: exit 0 instead."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        self._captured_signals.clear()


def settings_error_message(exc: ValidationError) -> str:
    lines = ["invalid configuration:"]
    for err in exc.errors():
        field = str(err["loc"][0]) if err["loc"] else "?"
        value = err.get("input")
        shown = (
            f" (got {value!r})"
            if isinstance(value, str | int | float) and "key" not in field
            else ""
        )
        lines.append(f"  VS_{field.upper()}: {err['msg']}{shown}")
    return "\n".join(lines)


APP_FACTORY = "vintagestory_api.app:create_app"
MAX_REQUEST_HEAD_BYTES = 256 * 1024


def main(app_factory: str = APP_FACTORY) -> int:
    """Serve the app; `app_factory` ("module:callable") lets process tests serve a wrapped app
    through this same path (settings check, logging, signal handling, exit code)."""
    try:
        settings = Settings()
    except ValidationError as exc:
        print(settings_error_message(exc), file=sys.stderr)
        return 2
    # Readable in a terminal, JSON for log shippers and service managers.
    log_format = settings.log_format or ("console" if sys.stdout.isatty() else "json")
    configure_logging(settings.log_level, log_format)
    config = uvicorn.Config(
        app_factory,
        factory=True,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        server_header=False,
        # uvicorn's HTTP parser resets the connection once a request head passes this many
        # bytes (16 KiB by default), before the app could answer: a 200 KB URL got a reset.
        # Up to this size it reaches the app, which answers 414 for a URL over 8 KiB and 431
        # for headers over 16 KiB (kit/request_limits.py).
        h11_max_incomplete_event_size=MAX_REQUEST_HEAD_BYTES,
        # httptools where installed (uvicorn[standard]), refusing what it cannot parse with
        # the error envelope; uvloop is picked by uvicorn's "auto" loop the same way.
        http=http_protocol(),
        # The lifespan waits for running jobs itself (VS_SHUTDOWN_GRACE_SECONDS); uvicorn only
        # has to stop accepting connections and let in-flight requests finish.
        timeout_graceful_shutdown=10,
    )
    # Bind before the lifespan: with the port taken, the whole startup (lock, jobs, upstream
    # checks) would otherwise run first, only for uvicorn to fail to listen afterwards.
    try:
        family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
        listener = socket.create_server((settings.host, settings.port), family=family)
    except OSError as exc:
        print(
            f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}; is "
            "another process using the port? Stop it or set VS_PORT (VS_HOST for the address)",
            file=sys.stderr,
        )
        return 1
    server = _Server(config)
    server.run(sockets=[listener])
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
