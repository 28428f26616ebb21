"""What the game server routes answer and accept."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

from .states import ServerState

EndedBy = Literal["stop_command", "sigterm", "sigkill", "self", "crash"]
EventKind = Literal[
    "start_requested",
    "stop_requested",
    "restart_requested",
    "spawned",
    "ready",
    "start_timeout",
    "stopped",
    "crashed",
    "auto_restart",
    "gave_up",
    "runtime_missing",
    "spawn_failed",
    "version_switched",
]
MAX_COMMAND_BYTES = 1024


class ErrorInfo(BaseModel):
    code: str
    message: str


class LastExit(BaseModel):
    code: int | None = Field(description="Exit code; null when a signal ended it")
    signal: int | None = Field(description="The signal that ended it, if one did")
    requested: bool = Field(description="Whether the API asked it to stop")
    stop_reason: str | None = Field(description="From the server's `Stop reason:` line")
    ended_by: EndedBy = Field(
        description="stop_command, sigterm or sigkill: the step of a requested stop that ended "
        "it; self: it stopped itself (exit without a request, with a stop reason); crash: any "
        "other exit nobody asked for"
    )
    at: datetime
    last_lines: list[str] = Field(description="The last console lines before the exit")
    error: ErrorInfo | None = Field(
        default=None, description="What the exit means, when known (DOTNET_RUNTIME_MISSING)"
    )


class RestartPending(BaseModel):
    pending: bool
    reasons: list[str] = Field(default_factory=list)
    at: datetime | None = Field(default=None, description="When the automatic restart is due")


class ServerStatus(BaseModel):
    state: ServerState
    version: str | None = Field(description="The game version, from the installed files or log")
    installed_version: str | None = Field(
        description="The current installed version (what the next start runs)"
    )
    previous_version: str | None = Field(
        description="The version before it, kept for POST /server/rollback"
    )
    pid: int | None
    started_at: datetime | None
    ready_at: datetime | None
    uptime_seconds: float | None = Field(description="Seconds since it became ready")
    players_online: int | None = Field(description="Null when it is not running")
    last_exit: LastExit | None
    restart_pending: RestartPending
    crash_loop: bool = Field(
        description="True after repeated crashes: automatic restarts have stopped until an "
        "admin starts it"
    )


class LifecycleEvent(BaseModel):
    at: datetime
    kind: EventKind
    state: ServerState = Field(description="The state after the event")
    role: str | None = Field(default=None, description="Who asked, for requested actions")
    detail: str | None = None


class LifecycleEvents(BaseModel):
    events: list[LifecycleEvent] = Field(description="Newest first")


class ConsoleLine(BaseModel):
    seq: int
    time: datetime = Field(description="When the API read it (UTC)")
    type: str = Field(
        description="The log type (Notification, Event, Chat, Warning, Error, Fatal, ...); "
        "stderr for the standard error stream, raw for a line without a log prefix"
    )
    text: str = Field(description="The message; continuation lines joined with newlines")
    server_time: str | None = Field(description="The timestamp the server printed")
    stream: Literal["stdout", "stderr"] = Field(description="The pipe it was read from")


class ConsoleLines(BaseModel):
    entries: list[ConsoleLine] = Field(description="Oldest first")
    last_seq: int = Field(description="The newest seq; pass as after_seq to read on")


# The console WebSocket's messages: every one is a JSON object whose `kind` says which.
class ConsoleEntryMessage(ConsoleLine):
    kind: Literal["entry"] = "entry"


class ConsoleBacklogEnd(BaseModel):
    kind: Literal["backlog_end"] = "backlog_end"
    last_seq: int = Field(
        description="The newest seq when the socket opened: every live entry after this "
        "message has a larger one"
    )


class ConsoleDropped(BaseModel):
    kind: Literal["dropped"] = "dropped"
    count: int = Field(
        description="Entries this client missed because it read too slowly; the seqs skip them "
        "(GET /server/console?after_seq= still has them while they are in the buffer)"
    )


def text_problem(value: str) -> str | None:
    """Why `value` cannot go to the console as one line, or None."""
    if len(value.encode("utf-8")) > MAX_COMMAND_BYTES:
        return f"is longer than {MAX_COMMAND_BYTES} bytes"
    if any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in value):
        return "contains a newline or another control character"
    if not value.strip():
        return "is empty"
    return None


# One line without control characters; JSON Schema cannot count UTF-8 bytes, so the 1 KB
# limit in bytes is checked by the service (INVALID_COMMAND).
_NO_CONTROL = r"[^\x00-\x1f\x7f-\x9f]*"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class ConsoleCommand(BaseModel):
    model_config = ConfigDict(extra="forbid")

    command: str = Field(
        max_length=MAX_COMMAND_BYTES,
        # Declared for clients and /docs; checked below, so a refusal explains itself.
        json_schema_extra={"pattern": rf"^/{_NO_CONTROL}$"},
        description="A console command starting with `/` (text without it would be broadcast "
        "as chat), e.g. `/stats`",
        examples=["/stats"],
    )

    @field_validator("command")
    @classmethod
    def _one_slash_command(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(
                "must start with / (text without it is broadcast to every player as chat; "
                'send {"say": "..."} to mean that)'
            )
        if _CONTROL.search(value):
            raise ValueError("contains a newline or another control character")
        return value


class ConsoleSay(BaseModel):
    model_config = ConfigDict(extra="forbid")

    say: str = Field(
        max_length=MAX_COMMAND_BYTES,
        json_schema_extra={"pattern": rf"^[^/.\x00-\x1f\x7f-\x9f]{_NO_CONTROL}$"},
        description="Text broadcast to every player as chat from Admin",
        examples=["Restart in 5 minutes"],
    )

    @field_validator("say")
    @classmethod
    def _plain_text(cls, value: str) -> str:
        if value.startswith(("/", ".")):
            raise ValueError("must not start with / or . (send a command as command)")
        if _CONTROL.search(value):
            raise ValueError("contains a newline or another control character")
        if not value:
            raise ValueError("is empty")
        return value


def _request_kind(body: Any) -> str | None:
    # The key the caller sent picks the model, so a refusal speaks of that one only.
    if isinstance(body, dict):
        if "command" in body:
            return "ConsoleCommand"
        if "say" in body:
            return "ConsoleSay"
    return None


CommandRequest = Annotated[
    Annotated[ConsoleCommand, Tag("ConsoleCommand")] | Annotated[ConsoleSay, Tag("ConsoleSay")],
    Discriminator(
        _request_kind,
        custom_error_type="command_or_say",
        custom_error_message="one of command or say is required",
    ),
]


class CommandReply(BaseModel):
    sent: str = Field(description="The line written to the server's console")
    echoed: bool = Field(description="Whether the server echoed it (it did read it)")
    lines: list[ConsoleLine] = Field(description="The echo and the reply lines after it")


class Player(BaseModel):
    name: str
    online_since: datetime = Field(description="When the API saw the join (or first poll)")


class PlayerList(BaseModel):
    players: list[Player]
    count: int
    max_clients: int | None = Field(description="From the last /stats poll")
    polled_at: datetime | None = Field(description="When /stats last confirmed the list")


# --- installs ----------------------------------------------------------------------------------

# What the versions API publishes: X.Y.Z, with -rc.N, -pre.N or -dev.N for unstable builds.
VERSION_PATTERN = r"^(stable|unstable|\d{1,4}\.\d{1,4}\.\d{1,4}(-(rc|pre|dev)\.\d{1,4})?)$"
InstallStage = Literal[
    "downloading", "verifying", "extracting", "backing_up", "switching", "done", "failed"
]


class InstallRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = Field(
        max_length=32,
        pattern=VERSION_PATTERN,
        description="A version from GET /versions (e.g. 1.21.6 or 1.22.0-rc.3), or stable or "
        "unstable for the newest of that channel",
        examples=["1.21.6", "stable"],
    )
    restart: bool = Field(
        default=False,
        description="If the game server runs: stop it gracefully, switch, start the new version "
        "(and go back to the old one if the new one does not become ready). Without it a "
        "running server is refused with SERVER_RUNNING",
    )
    dry_run: bool = Field(
        default=False,
        description="Only check: resolve the version, check the runtime and list the mods the "
        "new version would not verifiably run; nothing is downloaded or switched (200)",
    )


class IncompatibleMod(BaseModel):
    """An enabled mod the version to install does not verifiably run (from the mod database)."""

    modid: str
    installed_version: str | None
    compatibility: str = Field(
        description="not_verified (made for another patch of the same minor), incompatible, "
        "or unknown (the mod database could not say)"
    )
    compatible_release: str | None = Field(
        description="The release to update to for the new version, when there is one"
    )
    reason: str = Field(examples=["carryon 1.12.1 is made for 1.21.0, 1.21.1, 1.21.2, 1.21.3"])


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    restart: bool = Field(
        default=False, description="As for an install: stop, switch back, start again"
    )


class InstallOperation(BaseModel):
    kind: Literal["install", "rollback"]
    requested: str = Field(description="What was asked for: a version, stable or unstable")
    version: str = Field(description="The version being made current")
    from_version: str | None = Field(description="The current version when it began")
    restart: bool
    role: str = Field(description="Who asked")
    stage: InstallStage
    bytes_done: int = Field(description="Bytes downloaded so far")
    bytes_total: int | None = Field(description="The download's size, once the CDN has said")
    percent: float | None = Field(description="Of the download; null while its size is unknown")
    started_at: datetime
    finished_at: datetime | None
    rolled_back: bool = Field(
        description="The new version did not become ready, so the one before was made current "
        "and started again; error says why"
    )
    error: ErrorInfo | None = Field(description="Why it failed (stage failed)")
    dry_run: bool = Field(default=False, description="Only checked; nothing was changed")
    incompatible_mods: list[IncompatibleMod] | None = Field(
        default=None,
        description="Enabled mods the new version does not verifiably run, checked before "
        "anything is downloaded; null when they were not checked (a rollback)",
    )
    backup_id: str | None = Field(
        default=None,
        description="The pre_update world backup taken before the switch (GET /backups/{id}); "
        "null before that stage, or when there was no world yet",
    )

    @classmethod
    def begun(
        cls,
        kind: Literal["install", "rollback"],
        requested: str,
        version: str,
        current: str | None,
        restart: bool,
        role: str,
    ) -> InstallOperation:
        return cls(
            kind=kind,
            requested=requested,
            version=version,
            from_version=current,
            restart=restart,
            role=role,
            # A rollback has nothing to download: it begins with the world backup.
            stage="downloading" if kind == "install" else "backing_up",
            bytes_done=0,
            bytes_total=None,
            percent=None,
            started_at=datetime.now(UTC),
            finished_at=None,
            rolled_back=False,
            error=None,
        )
