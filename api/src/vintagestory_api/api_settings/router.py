"""The API's own settings: every key with its bounds, and partial updates applied live."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from vintagestory_api.auth.deps import AdminDep
from vintagestory_api.auth.errors import Forbidden
from vintagestory_api.errors import StateWriteFailed, ValidationFailed, error_responses
from vintagestory_api.kit.envelope import ApiResponse, ok

from .deps import ApiSettingsDep
from .errors import ApiSettingInvalid, ApiSettingUnknown
from .schemas import ApiSettingsView, patch_schema

router = APIRouter(prefix="/config", tags=["config"])


@router.get(
    "/api",
    summary="Every API setting with its value, default, description and bounds",
    response_model=ApiResponse[ApiSettingsView],
)
async def get_api_settings(settings: ApiSettingsDep) -> ApiResponse[ApiSettingsView]:
    return ok(settings.view())


@router.patch(
    "/api",
    summary="Change some settings; all keys valid or nothing is written",
    description=(
        "A partial object of settings. Unknown key: 422 `API_SETTING_UNKNOWN`; a value of the "
        "wrong type or out of bounds: 422 `API_SETTING_INVALID`. On success the file is written "
        "and the change is applied at once: an interval change reschedules its job, `0` removes "
        "it, a value above 0 for a disabled job registers it again."
    ),
    response_model=ApiResponse[ApiSettingsView],
    responses=error_responses(
        Forbidden, ApiSettingUnknown, ApiSettingInvalid, ValidationFailed, StateWriteFailed
    ),
    # The body is validated by the service (for its specific error codes), so the schema is
    # given to OpenAPI here rather than through a model parameter.
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": patch_schema(),
                    # Shown in /docs "Try it out": valid, and harmless to send.
                    "examples": {
                        "metrics": {
                            "summary": "Sample metrics every 30 seconds",
                            "value": {"metrics_collection_interval": 30},
                        },
                        "history": {
                            "summary": "Keep 100 runs per job",
                            "value": {"job_history_size": 100},
                        },
                    },
                }
            },
        }
    },
)
async def patch_api_settings(
    settings: ApiSettingsDep,
    role: AdminDep,
    changes: Annotated[dict[str, Any], Body()],
) -> ApiResponse[ApiSettingsView]:
    await settings.patch(changes, role=role)
    return ok(settings.view())
