"""The operator settings: loaded at startup, changed by PATCH, written durably, applied live."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import structlog
from pydantic import ValidationError

from vintagestory_api.auth.keys import Role
from vintagestory_api.errors import StateWriteFailed, clip_list
from vintagestory_api.kit.schemas import ComponentHealth
from vintagestory_api.kit.state_files import (
    Loaded,
    complete_even_if_cancelled,
    load_state,
    write_failed_health,
    write_json,
)

from .errors import ApiSettingInvalid, ApiSettingUnknown
from .schemas import ApiSettings, ApiSettingsView, describe

logger = structlog.get_logger()

API_SETTINGS_FILE = "api-settings.json"

# Called with (old, new) after each successful write, in write order.
SettingsListener = Callable[[ApiSettings, ApiSettings], Awaitable[None]]

_OK = ComponentHealth(status="ok")


def _input_text(value: Any) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _errors_text(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "settings"
        msg = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{key}: {msg} (got {_input_text(err.get('input'))})")
    return "; ".join(parts)


# A rule a higher layer knows (a crontab the scheduler can read): raises ApiSettingInvalid.
SettingsCheck = Callable[[Mapping[str, Any]], None]


def validate_changes(changes: Mapping[str, Any]) -> dict[str, int | bool | str]:
    """Check a partial update on its own; raises `ApiSettingUnknown` / `ApiSettingInvalid`."""
    known = ApiSettings.model_fields
    unknown = sorted(key for key in changes if key not in known)
    if unknown:
        raise ApiSettingUnknown(
            f"unknown setting(s): {clip_list(unknown)}; known settings: {', '.join(known)}"
        )
    try:
        # Settings have no rules across fields, so each value is judged against its own bounds.
        ApiSettings.model_validate(dict(changes))
    except ValidationError as exc:
        raise ApiSettingInvalid(_errors_text(exc)) from exc
    # Strict validation above: every value is already an int, a bool or (a crontab) a str.
    return dict(changes)


def parse_document(document: Any) -> tuple[ApiSettings, dict[str, Any]]:
    """A settings file's JSON as (settings, unknown keys); raises ValueError when invalid."""
    if not isinstance(document, dict):
        raise ValueError(f"top level is a JSON {type(document).__name__}, not an object")
    known = {key: value for key, value in document.items() if key in ApiSettings.model_fields}
    unknown = {key: value for key, value in document.items() if key not in known}
    try:
        return ApiSettings.model_validate(known), unknown
    except ValidationError as exc:
        raise ValueError(_errors_text(exc)) from exc


def _health(path: Path, loaded: Loaded[Any]) -> ComponentHealth:
    return loaded.health(path, without_backup="defaults", until="until the next successful change")


class ApiSettingsService:
    def __init__(
        self,
        path: Path,
        settings: ApiSettings | None = None,
        unknown: Mapping[str, Any] | None = None,
        health: ComponentHealth = _OK,
    ) -> None:
        self._path = path
        self._settings = settings if settings is not None else ApiSettings()
        # Keys a newer (or older) version wrote: carried along on every write, never dropped.
        self._unknown = dict(unknown or {})
        self._health = health
        self._lock = asyncio.Lock()
        self._listeners: list[SettingsListener] = []
        self._checks: list[SettingsCheck] = []

    @classmethod
    def load(cls, path: Path) -> ApiSettingsService:
        """Read the file; a bad one is set aside and the backup or the defaults are used."""
        loaded = load_state(path, parse_document, event="api_settings_corrupt")
        settings, unknown = loaded.value if loaded.value is not None else (ApiSettings(), {})
        if unknown:
            logger.warning("api_settings_unknown_keys", file=str(path), keys=sorted(unknown))
        service = cls(path, settings, unknown, _health(path, loaded))
        logger.info("api_settings_loaded", source=loaded.source, **settings.model_dump())
        return service

    @property
    def path(self) -> Path:
        return self._path

    @property
    def settings(self) -> ApiSettings:
        return self._settings

    @property
    def unknown_keys(self) -> list[str]:
        return sorted(self._unknown)

    @property
    def health(self) -> ComponentHealth:
        return self._health

    def state_file_health(self) -> dict[str, ComponentHealth]:
        return {self._path.name: self._health}

    def view(self) -> ApiSettingsView:
        return describe(self._settings, self.unknown_keys)

    def add_listener(self, listener: SettingsListener) -> None:
        """`listener(old, new)` runs after every write, under the write lock (so in order).

        It must not call `patch` itself. Its failure is logged; the change stays written.
        """
        self._listeners.append(listener)

    def add_check(self, check: SettingsCheck) -> None:
        """`check(changes)` runs on every PATCH after the settings' own validation."""
        self._checks.append(check)

    async def patch(self, changes: Mapping[str, Any], *, role: Role) -> ApiSettings:
        """Validate, write durably, then apply; all or nothing, one change at a time."""
        valid = validate_changes(changes)
        for check in self._checks:
            check(valid)
        return await complete_even_if_cancelled(self._patch(valid, role))

    async def _patch(self, changes: dict[str, int | bool | str], role: Role) -> ApiSettings:
        async with self._lock:
            old = self._settings
            new = ApiSettings.model_validate({**old.model_dump(), **changes})
            # Writing the same values would still rotate `.bak` and lose the previous version.
            # Only when the file is known not to hold what is running (damaged at startup, or
            # a write failed) does a change of nothing write: it repairs the file.
            if new == old and self._health.status == "ok":
                return new
            document = {**self._unknown, **new.model_dump()}
            try:
                # Blocking fsyncs run in a thread; the lock is held so writes never overlap.
                await asyncio.to_thread(write_json, self._path, document)
            except OSError as exc:
                logger.error("api_settings_write_failed", file=str(self._path), error=str(exc))
                self._health = write_failed_health(self._path, exc)
                raise StateWriteFailed(f"settings could not be saved: {exc}") from exc
            self._settings = new
            if self._health.status != "ok":
                logger.info("api_settings_recovered", file=str(self._path))
            self._health = _OK
            if new == old:
                return new
            diff = {
                key: {"old": getattr(old, key), "new": getattr(new, key)}
                for key in changes
                if getattr(old, key) != getattr(new, key)
            }
            logger.info("api_settings_changed", role=str(role), changes=diff)
            for listener in self._listeners:
                try:
                    await listener(old, new)
                except Exception:
                    logger.exception("api_settings_apply_failed", listener=repr(listener))
            return new
