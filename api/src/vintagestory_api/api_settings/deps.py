"""Route dependency for the operator settings service."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from .service import ApiSettingsService


async def get_api_settings(request: Request) -> ApiSettingsService:
    service: ApiSettingsService = request.app.state.api_settings
    return service


ApiSettingsDep = Annotated[ApiSettingsService, Depends(get_api_settings)]
