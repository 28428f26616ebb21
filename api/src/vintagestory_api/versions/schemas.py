"""Game versions offered for download: the API view and the cache file."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from vintagestory_api.kit.schemas import CheckOutcome

Channel = Literal["stable", "unstable"]
CHANNELS: tuple[Channel, ...] = ("stable", "unstable")


class ServerVersion(BaseModel):
    """One game version and its Linux dedicated-server download."""

    version: str = Field(examples=["1.22.7"])
    is_latest: bool = Field(description="The newest version of its channel")
    filename: str = Field(examples=["vs_server_linux-x64_1.22.7.tar.gz"])
    filesize: str = Field(description="Human-readable, as published", examples=["51.5 MB"])
    md5: str
    url: str = Field(description="Download URL")


class VersionList(BaseModel):
    channel: Channel
    versions: list[ServerVersion] = Field(description="Newest first")
    fetched_at: datetime | None = Field(description="When this list was last fetched successfully")
    last_check: CheckOutcome | None = Field(description="The last check of this channel")


class LatestVersions(BaseModel):
    stable: str | None
    unstable: str | None
    installed: str | None = Field(description="Version of the installed server, if any")
    update_available: bool = Field(description="The installed version is older than stable")
    checked_at: datetime | None = Field(
        description="When the versions above were last fetched successfully; a failed check "
        "does not move it"
    )
    status: Literal["ok", "failed", "never_checked"] = Field(
        default="never_checked",
        description="ok: the last check got fresh data (reason lists a channel that failed); "
        "failed: it got none, the versions above are from checked_at",
    )
    last_check: CheckOutcome | None = Field(
        default=None, description="The last check: when it ran, whether it worked, and why not"
    )


class ChannelCache(BaseModel):
    """What is kept per channel in `versions-cache.json`."""

    versions: list[ServerVersion] = Field(default_factory=list)
    latest: str | None = None
    fetched_at: datetime | None = None
    last_check: CheckOutcome | None = None


class VersionsCache(BaseModel):
    stable: ChannelCache = Field(default_factory=ChannelCache)
    unstable: ChannelCache = Field(default_factory=ChannelCache)
    # When the last check ran, whatever its outcome.
    checked_at: datetime | None = None
    last_check: CheckOutcome | None = None
