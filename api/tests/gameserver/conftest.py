"""An app whose game server is the fake, launched as a real child (tests/support/game_fixtures)."""

from tests.support.game_fixtures import (  # noqa: F401  # fixtures, used by name
    fifo,
    game,
    game_app,
    game_port,
    game_settings,
    knobs,
    timings,
)
