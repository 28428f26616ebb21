"""Settings for an app under test: nothing leaves the machine, built-in jobs off by default."""

from __future__ import annotations

from pathlib import Path

from pydantic import AnyHttpUrl, SecretStr

from vintagestory_api.api_settings.service import API_SETTINGS_FILE
from vintagestory_api.config import Settings
from vintagestory_api.kit.state_files import write_json

# The built-in jobs (version check, mod refresh, metrics sampling) stay off unless a test is
# about them: it then writes its own intervals into the settings file before the app starts.
BUILTIN_JOBS_OFF = {
    "server_versions_refresh_interval": 0,
    "mod_list_refresh_interval": 0,
    "metrics_collection_interval": 0,
}


def offline_settings(
    data_dir: Path,
    *,
    admin_key: str,
    monitor_key: str,
    builtin_jobs_off: bool = True,
    shutdown_grace_seconds: float = 5,
) -> Settings:
    if builtin_jobs_off:
        write_json(data_dir / "state" / API_SETTINGS_FILE, BUILTIN_JOBS_OFF, keep_backup=False)
    return Settings(
        data_dir=data_dir,
        api_key_admin=SecretStr(admin_key),
        api_key_monitor=SecretStr(monitor_key),
        shutdown_grace_seconds=shutdown_grace_seconds,
        timezone="UTC",
        # Nothing leaves the machine even when the built-in jobs are turned on: port 9 on
        # loopback refuses at once.
        versions_url=AnyHttpUrl("http://127.0.0.1:9"),
        mod_api_url=AnyHttpUrl("http://127.0.0.1:9/api"),
        # And no game server download either, whatever URL a version list names.
        cdn_url=AnyHttpUrl("http://127.0.0.1:9"),
        # Retrying a refusing port only slows the shutdown drain.
        http_retries=0,
    )
