"""What the game server routes answer and accept."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

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


class ConsoleCommand(BaseModel):
    model_config = ConfigDict(extra="forbid")

    command: str = Field(
        max_length=MAX_COMMAND_BYTES,
        pattern=rf"^/{_NO_CONTROL}$",
        description="A console command starting with `/` (text without it would be broadcast "
        "as chat), e.g. `/stats`",
        examples=["/stats"],
    )


class ConsoleSay(BaseModel):
    model_config = ConfigDict(extra="forbid")

    say: str = Field(
        max_length=MAX_COMMAND_BYTES,
        pattern=rf"^[^/.\x00-\x1f\x7f-\x9f]{_NO_CONTROL}$",
        description="Text broadcast to every player as chat from Admin",
        examples=["Restart in 5 minutes"],
    )


CommandRequest = ConsoleCommand | ConsoleSay


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
