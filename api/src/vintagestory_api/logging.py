"""Logging setup: the only `structlog.configure` call in the project."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

# Stdlib loggers of the libraries we run on; they are routed through structlog's formatter so
# that, in json mode, every line on stdout is one JSON object.
_LIBRARY_LOGGERS = (
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "httpx",
    "httpcore",
    "apscheduler",
)

_SECRET_KEYS = frozenset({"api_key", "x-api-key", "x_api_key", "key", "authorization", "password"})


def _redact_secrets(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    # Defence in depth: no code path should log a key, but if one ever does, the value is dropped.
    for name in list(event_dict):
        if name.lower() in _SECRET_KEYS:
            event_dict[name] = "[redacted]"
    return event_dict


def _snake_case_library_events(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    # Library records carry free text; keep it as `message` and give them a stable event name.
    record = event_dict.get("_record")
    if isinstance(record, logging.LogRecord) and not record.name.startswith("vintagestory_api"):
        event_dict["message"] = event_dict.get("event")
        event_dict["event"] = record.name.replace(".", "_") + "_log"
        event_dict["logger"] = record.name
    return event_dict


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Configure structlog and the stdlib root logger, once per process (the entry point does).

    Loggers are cached on first use: without that, every call, even one the level filters
    out, builds a bound logger again (about 8 µs against 2 µs), on every request and run. The
    price is that a later `structlog.configure` no longer reaches loggers already used, which is
    why tests do not call this and keep structlog's defaults, under which `capture_logs` works.
    """
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact_secrets,
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level]),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, _snake_case_library_events],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if fmt == "json" else _identity,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in _LIBRARY_LOGGERS:
        lib = logging.getLogger(name)
        lib.handlers.clear()
        lib.propagate = True
    # httpx logs every request at INFO, including URLs; keep it at WARNING unless debugging.
    quiet = logging.DEBUG if level == "DEBUG" else logging.WARNING
    logging.getLogger("httpx").setLevel(quiet)
    logging.getLogger("httpcore").setLevel(quiet)
    # Run outcomes are recorded and logged by our own wrapper; APScheduler's per-run INFO lines
    # would duplicate them.
    logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)


def _identity(_: WrappedLogger, __: str, event_dict: EventDict) -> Any:
    return event_dict
