"""Process settings, read from `VS_*` environment variables. No module-level instance."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

# Shorter keys can be guessed; a generated key has 43 characters.
MIN_API_KEY_LENGTH = 16


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VS_", extra="ignore", validate_default=True)

    data_dir: Path = Field(
        default=Path("./data"), description="Where state, caches and the server data live"
    )
    host: str = Field(default="127.0.0.1", min_length=1, description="Address to listen on")
    port: int = Field(default=8080, ge=1, le=65535, description="TCP port to listen on")
    api_key_admin: SecretStr | None = Field(
        default=None,
        description="Admin key (at least 16 characters); generated and stored in "
        "<data>/state/admin-api-key when unset or empty",
    )
    api_key_monitor: SecretStr | None = Field(
        default=None,
        description="Read-only key (at least 16 characters); the monitor role is off when unset "
        "or empty",
    )
    log_level: LogLevel = Field(default="INFO", description="Minimum level logged")
    log_format: Literal["json", "console"] | None = Field(
        default=None,
        description="json: one JSON object per line; console: human-readable; default: console "
        "when stdout is a terminal, json otherwise",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated browser origins allowed by CORS (scheme://host[:port]); "
        "empty turns CORS off",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        le=1024 * 1024 * 1024,
        description="Largest request body accepted; larger ones are answered 413 unread",
    )
    timezone: str | None = Field(
        default=None,
        description="IANA timezone for cron jobs without their own; empty uses the host's",
    )
    shutdown_grace_seconds: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description="How long shutdown waits for running jobs before cancelling them",
    )
    versions_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("https://api.vintagestory.at"),
        description="Base URL of the game versions API ({base}/stable.json, {base}/unstable.json)",
    )
    mod_api_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("https://mods.vintagestory.at/api"),
        description="Base URL of the mod database API ({base}/mod/{modid})",
    )
    http_connect_timeout: float = Field(
        default=5.0, gt=0, le=120, description="Seconds to wait for an upstream TCP/TLS connect"
    )
    http_read_timeout: float = Field(
        default=15.0, gt=0, le=300, description="Seconds an upstream API may stay silent mid-reply"
    )
    http_request_deadline: float = Field(
        default=60.0,
        gt=0,
        le=600,
        description="Longest one upstream request may take in total, retries included",
    )
    http_max_response_bytes: int = Field(
        default=20 * 1024 * 1024,
        ge=1024,
        le=512 * 1024 * 1024,
        description="Largest upstream response body accepted; larger ones are an error",
    )
    http_retries: int = Field(
        default=2, ge=0, le=5, description="Retries after a connect error or a 5xx answer"
    )
    http_retry_backoff: float = Field(
        default=0.5, ge=0, le=30, description="First retry delay in seconds; doubles each retry"
    )
    moddb_concurrency: int = Field(
        default=4, ge=1, le=16, description="Mod database lookups in flight at once"
    )
    mod_max_download_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=1024,
        le=4 * 1024 * 1024 * 1024,
        description="Largest mod archive downloaded or uploaded; larger ones are refused",
    )
    mod_download_deadline: float = Field(
        default=600.0,
        gt=0,
        le=3600,
        description="Longest one mod download may take in total, retries included",
    )
    mod_previous_kept: int = Field(
        default=3,
        ge=1,
        le=50,
        description="Replaced or removed versions kept per mod in <data>/mods-previous for "
        "rollback",
    )
    min_free_disk_bytes: int = Field(
        default=512 * 1024 * 1024,
        ge=0,
        description="Free space on the data directory's filesystem below which /healthz reports "
        "the disk degraded, before writes start failing; 0 turns the check off",
    )

    server_dir: Path | None = Field(
        default=None,
        description="The game server's install directory: versions/<v>/ side by side and the "
        "current link (or a hand-made install's VintagestoryServer.dll); default <data>/server",
    )
    server_data_dir: Path | None = Field(
        default=None,
        description="The game's --dataPath (world, config, logs), always passed absolute; "
        "default <data>/serverdata",
    )
    server_command: str | None = Field(
        default=None,
        description="A command line run instead of `dotnet <server_dir>/VintagestoryServer.dll`, "
        "split like a shell would (no shell runs it); --dataPath and --port are appended, and "
        "{server_dir} becomes the current version's directory",
    )
    server_port: int | None = Field(
        default=None, ge=1, le=65535, description="The game's --port; unset: serverconfig.json's"
    )
    server_players_poll_seconds: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="Seconds between the /stats polls that correct the online player list",
    )
    cdn_url: AnyHttpUrl | None = Field(
        default=None,
        description="Replaces the scheme, host and port of the game download URLs the versions "
        "API publishes (https://cdn.vintagestory.at), e.g. for a mirror; unset: as published",
    )
    install_max_download_bytes: int = Field(
        default=512 * 1024 * 1024,
        ge=1024,
        le=16 * 1024 * 1024 * 1024,
        description="Largest game server download accepted; a larger one fails the install",
    )
    install_max_unpacked_bytes: int = Field(
        default=2 * 1024 * 1024 * 1024,
        ge=1024,
        le=64 * 1024 * 1024 * 1024,
        description="Most bytes a game server archive may unpack to; more fails the install",
    )
    install_download_timeout: float = Field(
        default=900.0,
        gt=0,
        le=86400,
        description="Longest a game server download may take in total, in seconds",
    )

    @field_validator("api_key_admin", "api_key_monitor", mode="before")
    @classmethod
    def _check_key(cls, value: object, info: ValidationInfo) -> object:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if not isinstance(text, str):
            return value
        # Surrounding whitespace cannot arrive in a header (HTTP strips it), so it is not part
        # of a key; and an empty key is no key: `VS_API_KEY_ADMIN=` must not mean "every
        # request is refused", nor let an empty header in.
        text = text.strip()
        if not text:
            return None
        if len(text) < MIN_API_KEY_LENGTH:
            instead = (
                "unset it to have one generated"
                if info.field_name == "api_key_admin"
                else "unset it to turn the monitor role off"
            )
            raise ValueError(
                f"is {len(text)} characters long; a key needs at least {MIN_API_KEY_LENGTH} to "
                f"be secret ({instead})"
            )
        return text

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_format(cls, value: object) -> object:
        if isinstance(value, str):
            return value.strip().lower() or None
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            value = [origin.strip() for origin in value.split(",") if origin.strip()]
        if isinstance(value, list):
            return [_origin(item) if isinstance(item, str) else item for item in value]
        return value

    @field_validator("timezone", mode="before")
    @classmethod
    def _check_timezone(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, str):
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                ZoneInfo(value.strip())
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"unknown IANA timezone {value!r}") from exc
            return value.strip()
        return value

    @field_validator("server_command", mode="before")
    @classmethod
    def _blank_command(cls, value: object) -> object:
        if isinstance(value, str):
            if not value.strip():
                return None
            try:
                shlex.split(value)
            except ValueError as exc:
                raise ValueError(f"cannot be split into words: {exc}") from exc
        return value

    @property
    def state_dir(self) -> Path:
        return self.data_dir / "state"

    @property
    def game_server_dir(self) -> Path:
        return (self.server_dir or self.data_dir / "server").absolute()

    @property
    def game_data_dir(self) -> Path:
        return (self.server_data_dir or self.data_dir / "serverdata").absolute()


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(text: str) -> str:
    """`text` as the exact string a browser sends in `Origin`, which CORS compares verbatim.

    `https://x.example/` never matched anything (browsers send no slash), so the slash, a
    default port and upper case are dropped; anything that is not scheme://host[:port] is an
    error rather than an origin that silently never matches.
    """
    if text == "*":
        return text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an origin ({exc})") from exc
    if (
        parts.scheme.lower() not in _DEFAULT_PORTS
        or not parts.hostname
        or parts.path not in {"", "/"}
        or parts.query
        or parts.fragment
        or parts.username is not None
        or "?" in text
        or "#" in text
    ):
        raise ValueError(
            f"{text!r} is not an origin: give scheme://host[:port], e.g. https://x.example"
        )
    scheme = parts.scheme.lower()
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    shown_port = "" if port is None or port == _DEFAULT_PORTS[scheme] else f":{port}"
    return f"{scheme}://{host}{shown_port}"
