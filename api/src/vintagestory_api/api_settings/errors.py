"""Errors of changing the operator settings."""

from __future__ import annotations

from vintagestory_api.errors import ValidationFailed


class ApiSettingsError(ValidationFailed):
    """Base of the settings domain's errors: a change that is refused before anything is written."""


class ApiSettingUnknown(ApiSettingsError):
    code = "API_SETTING_UNKNOWN"
    example = "unknown setting(s): job_history; known settings: mod_list_refresh_interval, ..."


class ApiSettingInvalid(ApiSettingsError):
    code = "API_SETTING_INVALID"
    example = "job_history_size: Input should be less than or equal to 1000 (got 5000)"
