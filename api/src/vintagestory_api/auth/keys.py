"""API keys: loading the configured ones, or generating and keeping the admin key."""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import structlog

from vintagestory_api.config import Settings
from vintagestory_api.kit.state_files import write_atomic

logger = structlog.get_logger()

ADMIN_KEY_FILE = "admin-api-key"
API_KEY_HEADER = "X-API-Key"
UNAUTHORIZED_MESSAGE = "missing or invalid API key in the X-API-Key header"
_HEADER_NAME = API_KEY_HEADER.lower().encode()


class Role(StrEnum):
    ADMIN = "admin"
    MONITOR = "monitor"


@dataclass(frozen=True, repr=False)
class ApiKeys:
    """The keys as bytes; `repr` is hidden so a key can never end up in a log by accident."""

    admin: bytes
    monitor: bytes | None

    def role_for(self, presented: bytes) -> Role | None:
        # Both comparisons always run, in constant time, so timing says nothing about which
        # key (if any) a guess was close to.
        is_admin = hmac.compare_digest(presented, self.admin)
        is_monitor = self.monitor is not None and hmac.compare_digest(presented, self.monitor)
        if is_admin:
            return Role.ADMIN
        if is_monitor:
            return Role.MONITOR
        return None


def load_api_keys(settings: Settings) -> ApiKeys:
    """Keys from settings; a missing admin key is generated once and kept in the state dir."""
    monitor = settings.api_key_monitor.get_secret_value() if settings.api_key_monitor else None
    if settings.api_key_admin is not None:
        admin = settings.api_key_admin.get_secret_value()
    else:
        admin = _stored_or_new_admin_key(settings.state_dir / ADMIN_KEY_FILE)
    if monitor is not None and hmac.compare_digest(monitor.encode(), admin.encode()):
        raise ValueError("VS_API_KEY_MONITOR must differ from the admin key")
    return ApiKeys(admin=admin.encode(), monitor=monitor.encode() if monitor else None)


def _stored_or_new_admin_key(path: Path) -> str:
    try:
        stored = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        stored = ""
    if stored:
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
        logger.info("admin_api_key_loaded", path=str(path))
        return stored
    key = secrets.token_urlsafe(32)
    write_atomic(path, (key + "\n").encode(), keep_backup=False, mode=0o600)
    logger.warning(
        "admin_api_key_generated",
        path=str(path),
        hint="VS_API_KEY_ADMIN is unset; read the key from this file",
    )
    return key


def presented_key(headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    """The raw `X-API-Key` bytes of an ASGI scope's headers: compared as bytes, never decoded,
    so a non-ASCII value is simply a wrong key."""
    for name, value in headers:
        if name == _HEADER_NAME:
            return bytes(value)
    return None


def log_auth_failure(client: str | None, method: str, path: str, presented: bytes | None) -> None:
    logger.warning(
        "auth_failed",
        client=client,
        method=method,
        path=path,
        reason="missing key" if presented is None else "wrong key",
    )
