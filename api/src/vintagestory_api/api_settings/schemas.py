"""The API's own operator settings, kept in `<data>/state/api-settings.json`."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# An interval setting of 0 turns its built-in job off. The network jobs must not hammer the
# public Vintage Story APIs, so once enabled they run at most once a minute and at least weekly.
NETWORK_JOB_MIN_SECONDS = 60
WEEK_SECONDS = 7 * 24 * 3600


def _off_or_at_least_network_minimum(value: int) -> int:
    # `ge=0` says the lower bound of the type; "0 or at least 60" is a rule a bound cannot say.
    if 0 < value < NETWORK_JOB_MIN_SECONDS:
        raise ValueError(f"must be 0 (job disabled) or at least {NETWORK_JOB_MIN_SECONDS} seconds")
    return value


NetworkJobInterval = Annotated[
    int,
    Field(
        ge=0,
        le=WEEK_SECONDS,
        json_schema_extra={
            "unit": "seconds",
            "minimumWhenEnabled": NETWORK_JOB_MIN_SECONDS,
            # The same rule in JSON Schema, so clients and contract fuzzing see it.
            "not": {"exclusiveMinimum": 0, "exclusiveMaximum": NETWORK_JOB_MIN_SECONDS},
        },
    ),
    AfterValidator(_off_or_at_least_network_minimum),
]
MetricsInterval = Annotated[
    int, Field(ge=0, le=3600, json_schema_extra={"unit": "seconds", "minimumWhenEnabled": 1})
]


# One week; also the static upper bound of the metrics history window.
MAX_METRICS_RETENTION_MINUTES = 10080


class ApiSettings(BaseModel):
    """Validated as a whole; strict, so `true`, `"5"` and `5.0` are not taken for integers."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    mod_list_refresh_interval: NetworkJobInterval = Field(
        default=14400,
        description="Seconds between runs of mod_cache_refresh (mod update check); 0 disables it",
    )
    server_versions_refresh_interval: NetworkJobInterval = Field(
        default=86400,
        description="Seconds between runs of server_versions_check (game versions); 0 disables it",
    )
    metrics_collection_interval: MetricsInterval = Field(
        default=10,
        description="Seconds between runs of metrics_collection (resource samples); 0 disables it",
    )
    metrics_retention_minutes: int = Field(
        default=1440,
        ge=1,
        le=MAX_METRICS_RETENTION_MINUTES,
        description="How many minutes of metrics samples are kept in memory",
        json_schema_extra={"unit": "minutes"},
    )
    job_history_size: int = Field(
        default=50,
        ge=1,
        le=1000,
        description="Runs kept in each job's history; applies from the next run on",
        json_schema_extra={"unit": "runs"},
    )
    job_history_max_age_days: int = Field(
        default=90,
        ge=1,
        le=3650,
        description="Runs older than this many days are deleted from the run database",
        json_schema_extra={"unit": "days"},
    )
    default_job_timeout_seconds: int = Field(
        default=300,
        ge=1,
        le=86400,
        description="Timeout of jobs that have no timeout of their own; applies from the next run",
        json_schema_extra={"unit": "seconds"},
    )
    server_start_timeout_seconds: int = Field(
        default=300,
        ge=1,
        le=86400,
        description="How long a starting game server may take to print its ready line before "
        "it is stopped",
        json_schema_extra={"unit": "seconds"},
    )
    server_stop_timeout_seconds: int = Field(
        default=120,
        ge=1,
        le=86400,
        description="How long a stopping game server may take (a world save) before SIGTERM",
        json_schema_extra={"unit": "seconds"},
    )
    server_kill_timeout_seconds: int = Field(
        default=30,
        ge=1,
        le=3600,
        description="How long the game server may take after SIGTERM before SIGKILL",
        json_schema_extra={"unit": "seconds"},
    )
    server_restart_backoff_seconds: int = Field(
        default=10,
        ge=1,
        le=300,
        description="Delay before restarting a crashed game server; doubles per crash, up to "
        "5 minutes",
        json_schema_extra={"unit": "seconds"},
    )
    server_auto_restart: bool = Field(
        default=True, description="Restart the game server when it exits without being asked"
    )
    server_auto_start: bool = Field(
        default=False, description="Start the game server when the API starts"
    )
    world_backup_cron: str = Field(
        default="",
        max_length=100,
        description="When world_backup runs: a 5-field crontab (or @daily, ...) read in "
        'VS_TIMEZONE; "" turns scheduled backups off',
        json_schema_extra={"unit": "crontab"},
    )
    backup_keep_last: int = Field(
        default=10,
        ge=1,
        le=1000,
        description="Retention: the newest this many good backups are always kept",
        json_schema_extra={"unit": "backups"},
    )
    backup_keep_daily_days: int = Field(
        default=7,
        ge=0,
        le=3650,
        description="Retention: also the newest backup of each of this many recent days",
        json_schema_extra={"unit": "days"},
    )
    backup_keep_weekly_weeks: int = Field(
        default=4,
        ge=0,
        le=520,
        description="Retention: also the newest backup of each of this many recent weeks",
        json_schema_extra={"unit": "weeks"},
    )
    backup_max_total_bytes: int = Field(
        default=0,
        ge=0,
        # The largest integer a JSON client (JavaScript) reads exactly.
        le=2**53 - 1,
        description="Retention: the oldest unpinned backups go until the rest fit in this many "
        "bytes (the newest good backup always stays); 0 means no cap",
        json_schema_extra={"unit": "bytes"},
    )
    backup_free_space_factor: int = Field(
        default=2,
        ge=0,
        le=100,
        description="A backup starts only with this many times the world's size free on the "
        "backup disk; 0 turns the check off",
        json_schema_extra={"unit": "times the world size"},
    )
    backup_autosave_timeout_seconds: int = Field(
        default=60,
        ge=1,
        le=3600,
        description="How long /autosavenow may take to commit the world before a backup fails",
        json_schema_extra={"unit": "seconds"},
    )
    backup_genbackup_timeout_seconds: int = Field(
        default=1800,
        ge=1,
        le=86400,
        description="How long /genbackup may take (and its file to be complete) before a backup "
        "fails",
        json_schema_extra={"unit": "seconds"},
    )
    backup_max_age_hours: int = Field(
        default=0,
        ge=0,
        le=8760,
        description="/healthz reports backups degraded when the last good backup is older; 0 "
        "means twice the world_backup_cron interval (48 h) when it is set, else off",
        json_schema_extra={"unit": "hours"},
    )


class ApiSettingInfo(BaseModel):
    value: int | bool | str
    default: int | bool | str
    description: str
    minimum: int | None = Field(default=None, description="None for on/off settings")
    maximum: int | None = Field(default=None, description="None for on/off settings")
    minimum_when_enabled: int | None = Field(
        default=None,
        description="For job intervals: 0 disables the job, any other value must be at least this",
    )
    unit: str | None = None


class ApiSettingsView(BaseModel):
    settings: dict[str, ApiSettingInfo] = Field(description="Every setting, keyed by its name")
    unknown_keys: list[str] = Field(
        default_factory=list,
        description="Keys in the settings file this version does not know; kept, not applied",
    )


@cache
def _properties() -> dict[str, dict[str, Any]]:
    properties: dict[str, dict[str, Any]] = ApiSettings.model_json_schema()["properties"]
    return properties


def describe(settings: ApiSettings, unknown_keys: list[str] | None = None) -> ApiSettingsView:
    """Each setting with its value and the metadata a UI needs, taken from the model's schema."""
    infos: dict[str, ApiSettingInfo] = {}
    for name, prop in _properties().items():
        infos[name] = ApiSettingInfo(
            value=getattr(settings, name),
            default=prop["default"],
            description=prop["description"],
            minimum=prop.get("minimum"),
            maximum=prop.get("maximum"),
            minimum_when_enabled=prop.get("minimumWhenEnabled"),
            unit=prop.get("unit"),
        )
    return ApiSettingsView(settings=infos, unknown_keys=sorted(unknown_keys or []))


@cache
def patch_schema() -> dict[str, Any]:
    """The PATCH body's JSON schema: any subset of the settings, nothing else, no defaults."""
    schema = ApiSettings.model_json_schema()
    properties = {
        name: {key: value for key, value in prop.items() if key != "default"}
        for name, prop in schema["properties"].items()
    }
    return {
        "title": "ApiSettingsPatch",
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
        "minProperties": 0,
    }
