"""The step actions of a schedule: one typed model per action, told apart by `action`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Lifecycle steps and the steps that take the game server's lock: a schedule with one of
# them is disruptive (maintenance holds of scope "disruptive" skip it; one at a time).
DISRUPTIVE_ACTIONS = frozenset({"stop", "start", "restart", "install", "backup"})
COUNTDOWN_ACTIONS = frozenset({"stop", "restart", "install"})
MAX_WARNING_SECONDS = 86_400
Seconds = Annotated[int, Field(ge=1, le=86_400)]
Message = Annotated[str, Field(min_length=1, max_length=500, pattern=r"^[^\r\n\x00]*$")]
# A warning: {remaining} is the only placeholder, no other braces.
Template = Annotated[
    str,
    Field(
        min_length=1,
        max_length=500,
        pattern=r"^[^{}\r\n\x00]*(\{remaining\}[^{}\r\n\x00]*)*$",
    ),
]


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timeout_seconds: Seconds = Field(
        default=60,
        description="How long the step's effect may take (for a step with a countdown: the "
        "action after it, not the countdown); past it the step is timed_out",
    )
    on_failure: Literal["abort", "continue"] = Field(
        default="abort", description="abort: the run fails here; continue: go on to the next step"
    )


class AnnounceStep(_Step):
    """Broadcast a message to every player (`/announce`); braces become parentheses, since
    the game drops the log line of a message that has them."""

    action: Literal["announce"]
    message: Message = Field(examples=["The nightly restart is in 15 minutes"])
    skip_if_server_stopped: bool = Field(
        default=False, description="Skip the step (not fail it) when the server is not running"
    )


class CommandStep(_Step):
    """A slash command through the console; done when the server echoes it."""

    action: Literal["command"]
    command: Annotated[str, Field(min_length=2, max_length=1000, pattern=r"^/[^\r\n\x00]*$")] = (
        Field(examples=["/autosavenow"])
    )
    skip_if_server_stopped: bool = False


class BackupStep(_Step):
    """A world backup; done when the backup is verified."""

    action: Literal["backup"]
    timeout_seconds: Seconds = 1800


class UpdateModsStep(_Step):
    """Apply every mod update the last mod check found for the installed game version; done
    when the files are in place. A running server then has a restart pending (with the
    reasons on GET /server), which a later restart step clears."""

    action: Literal["update_mods"]
    timeout_seconds: Seconds = 900


class _Countdown(_Step):
    warn_before: list[Annotated[int, Field(ge=1, le=MAX_WARNING_SECONDS)]] = Field(
        default_factory=list,
        max_length=20,
        description="Announce this many seconds before the action, which happens at the "
        "scheduled time (the run starts early by the longest warning)",
        examples=[[900, 300, 60, 10]],
        json_schema_extra={"uniqueItems": True},
    )
    message: Template = Field(
        default="Server restarts in {remaining}",
        description="The warning; {remaining} is the time left in words (15 minutes)",
    )
    timeout_seconds: Seconds = 600

    @field_validator("warn_before")
    @classmethod
    def _distinct(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError("each warning time may appear once")
        return sorted(value, reverse=True)


class StopStep(_Countdown):
    """Stop the game server gracefully; done when it has exited."""

    action: Literal["stop"]
    message: Template = "Server stops in {remaining}"


class StartStep(_Step):
    """Start the game server; done when it is ready."""

    action: Literal["start"]
    timeout_seconds: Seconds = 600


class RestartStep(_Countdown):
    """Stop the game server gracefully and start it; done when it is ready again."""

    action: Literal["restart"]


class InstallStep(_Countdown):
    """Install a game version ("stable", "unstable" or a version number); done when installed."""

    action: Literal["install"]
    version: Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9.\-]+$")] = (
        "stable"
    )
    message: Template = "Server updates in {remaining}"
    timeout_seconds: Seconds = 1800


class WaitStep(_Step):
    """Wait a fixed time."""

    action: Literal["wait"]
    seconds: Seconds
    timeout_seconds: Seconds = MAX_WARNING_SECONDS


class WaitUntilEmptyStep(_Step):
    """Wait until nobody is online, by fresh player polls; failed when players are still on
    after `timeout_seconds`."""

    action: Literal["wait_until_empty"]
    timeout_seconds: Seconds
    poll_every_seconds: Annotated[int, Field(ge=1, le=3600)] = 10


Step = Annotated[
    AnnounceStep
    | CommandStep
    | BackupStep
    | UpdateModsStep
    | StopStep
    | StartStep
    | RestartStep
    | InstallStep
    | WaitStep
    | WaitUntilEmptyStep,
    Field(discriminator="action"),
]


def warn_before(step: Step) -> list[int]:
    return list(step.warn_before) if isinstance(step, _Countdown) else []


def is_disruptive(steps: list[Step]) -> bool:
    return any(step.action in DISRUPTIVE_ACTIONS for step in steps)


def lead_seconds(steps: list[Step]) -> int:
    """How long before the scheduled time a run starts: its longest warning."""
    return max((max(warn_before(s), default=0) for s in steps), default=0)
