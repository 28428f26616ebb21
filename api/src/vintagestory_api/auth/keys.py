"""API keys: loading the configured ones, or generating and keeping the admin key."""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import structlog

from vintagestory_api.config import MIN_API_KEY_LENGTH, Settings
from vintagestory_api.kit.file_reads import NotARegularFile, os_error_reason, read_file_bytes
from vintagestory_api.kit.schemas import ComponentHealth
from vintagestory_api.kit.startup import StartupRefused
from vintagestory_api.kit.state_files import set_aside, write_atomic

logger = structlog.get_logger()

ADMIN_KEY_FILE = "admin-api-key"
API_KEY_HEADER = "X-API-Key"
UNAUTHORIZED_MESSAGE = "missing or invalid API key in the X-API-Key header"
_HEADER_NAME = API_KEY_HEADER.lower().encode()
# A key file is one short line; anything much larger is not a key.
_MAX_KEY_FILE_BYTES = 4096
_OK = ComponentHealth(status="ok")
_MISSING = "missing"


class Role(StrEnum):
    ADMIN = "admin"
    MONITOR = "monitor"


@dataclass(frozen=True, repr=False)
class ApiKeys:
    """The keys as bytes; `repr` is hidden so a key can never end up in a log by accident."""

    admin: bytes
    monitor: bytes | None
    # The admin key file's health for /healthz (ok when the key comes from the environment).
    admin_key_file: ComponentHealth = field(default_factory=lambda: _OK)

    def state_file_health(self) -> dict[str, ComponentHealth]:
        return {ADMIN_KEY_FILE: self.admin_key_file}

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
    """Keys from settings; a missing admin key is generated once and kept in the state dir.

    Raises `StartupRefused` when no admin key can be had without locking the admin out.
    """
    monitor = settings.api_key_monitor.get_secret_value() if settings.api_key_monitor else None
    health = _OK
    if settings.api_key_admin is not None:
        admin = settings.api_key_admin.get_secret_value()
    else:
        admin, health = _stored_or_new_admin_key(settings.state_dir / ADMIN_KEY_FILE)
    if monitor is not None and hmac.compare_digest(monitor.encode(), admin.encode()):
        raise StartupRefused("VS_API_KEY_MONITOR must differ from the admin key; change one")
    return ApiKeys(
        admin=admin.encode(), monitor=monitor.encode() if monitor else None, admin_key_file=health
    )


def _stored_or_new_admin_key(path: Path) -> tuple[str, ComponentHealth]:
    stored, problem = _read_stored_key(path)
    if problem is None:
        _keep_private(path)
        logger.info("admin_api_key_loaded", path=str(path))
        return stored, _OK
    kept = ""
    if problem != _MISSING:
        moved, error = set_aside(path)
        if moved is None:
            raise StartupRefused(
                f"cannot set aside the damaged admin key file {path} ({problem}): {error}; "
                "remove it, or set VS_API_KEY_ADMIN",
                file=str(path),
            )
        logger.error(
            "admin_api_key_file_damaged", file=str(path), reason=problem, kept_as=str(moved)
        )
        kept = f"; kept as {moved.name}"
    key = _new_key(path)
    if problem == _MISSING:
        return key, _OK
    return key, ComponentHealth(
        status="degraded",
        reason=f"{path.name}: {problem}{kept}; a new key was generated and stored in {path}, "
        "read it from there (the old key, if any, gets 401)",
    )


def _read_stored_key(path: Path) -> tuple[str, str | None]:
    """(the stored key, None), or ("", what is wrong with it): `_MISSING` when there is none.

    A file that holds a key this user may not read refuses the start: a new key in its place
    would lock out every script that uses the old one. Only what can never be a key (a
    directory, a FIFO, bytes that are not text, a key too short to be secret) is replaced.
    """
    try:
        raw = read_file_bytes(path, _MAX_KEY_FILE_BYTES)
    except FileNotFoundError:
        return "", _MISSING
    except NotARegularFile as exc:
        return "", os_error_reason(exc)
    except PermissionError:
        raise StartupRefused(
            f"cannot read the admin key file {path}: permission denied; fix its owner or mode "
            "(it must be readable by this user), or set VS_API_KEY_ADMIN",
            file=str(path),
        ) from None
    except OSError as exc:
        raise StartupRefused(
            f"cannot read the admin key file {path}: {os_error_reason(exc)}; fix the file or "
            "the disk, or set VS_API_KEY_ADMIN",
            file=str(path),
        ) from None
    if len(raw) > _MAX_KEY_FILE_BYTES:
        return "", f"larger than {_MAX_KEY_FILE_BYTES} bytes, not a key"
    try:
        stored = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        return "", "not UTF-8 text"
    if not stored:
        return "", "empty"
    if len(stored) < MIN_API_KEY_LENGTH:
        return "", (
            f"holds a key of {len(stored)} characters, shorter than the {MIN_API_KEY_LENGTH} "
            "a key needs to be secret"
        )
    return stored, None


def _keep_private(path: Path) -> None:
    try:
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
    except OSError as exc:
        # Not ours to change (another owner, a read-only disk): the key still works.
        logger.warning("admin_api_key_mode_not_fixed", path=str(path), error=str(exc))


def _new_key(path: Path) -> str:
    key = secrets.token_urlsafe(32)
    try:
        write_atomic(path, (key + "\n").encode(), keep_backup=False, mode=0o600)
    except OSError as exc:
        # The key is never logged, so a key that is not stored is a key nobody can learn.
        raise StartupRefused(
            f"cannot store the generated admin key in {path}: {(exc.strerror or str(exc)).lower()}"
            f"; make {path.parent} writable by this user, or set VS_API_KEY_ADMIN",
            file=str(path),
        ) from None
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


def log_auth_failure(
    client: str | None,
    method: str,
    path: str,
    presented: bytes | None,
    *,
    reason: str | None = None,
) -> None:
    logger.warning(
        "auth_failed",
        client=client,
        method=method,
        path=path,
        reason=reason or ("missing key" if presented is None else "wrong key"),
    )
