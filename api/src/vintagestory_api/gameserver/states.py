"""The game server's states and the transitions between them; depends on nothing.

Every change of state goes through `Supervisor.change_state`, which checks it here, so a state
the supervisor could never reach from where it is shows up as a bug at once instead of as a
server reported in a state it is not in.
"""

from __future__ import annotations

from enum import StrEnum


class ServerState(StrEnum):
    NOT_INSTALLED = "not_installed"
    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    CRASHED = "crashed"


# From each state, where it may go. A start always passes through STARTING (spawned, not yet
# ready); RUNNING only follows the ready line; an exit we asked for ends in STOPPED, any other
# in CRASHED.
TRANSITIONS: dict[ServerState, frozenset[ServerState]] = {
    ServerState.NOT_INSTALLED: frozenset({ServerState.STOPPED}),
    ServerState.STOPPED: frozenset({ServerState.STARTING, ServerState.NOT_INSTALLED}),
    ServerState.STARTING: frozenset(
        {ServerState.RUNNING, ServerState.STOPPING, ServerState.CRASHED}
    ),
    ServerState.RUNNING: frozenset({ServerState.STOPPING, ServerState.CRASHED}),
    # A requested stop ends in STOPPED however the process exits, by /stop or by SIGKILL.
    ServerState.STOPPING: frozenset({ServerState.STOPPED}),
    ServerState.CRASHED: frozenset(
        {ServerState.STARTING, ServerState.STOPPED, ServerState.NOT_INSTALLED}
    ),
}

# A process exists (spawned and not yet reaped).
PROCESS_STATES = frozenset({ServerState.STARTING, ServerState.RUNNING, ServerState.STOPPING})
# A start is accepted from these.
STARTABLE_STATES = frozenset({ServerState.STOPPED, ServerState.CRASHED})
# A start asked for in these has nothing to do: the server is already up or coming up.
UP_STATES = frozenset({ServerState.STARTING, ServerState.RUNNING})


class InvalidTransition(RuntimeError):
    """A change of state the supervisor must never make."""


def check_transition(old: ServerState, new: ServerState) -> None:
    if new not in TRANSITIONS[old]:
        raise InvalidTransition(f"game server state {old} cannot become {new}")
