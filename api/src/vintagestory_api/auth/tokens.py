"""Short-lived, single-use tokens for WebSockets, which browsers cannot give an `X-API-Key` header.

An admin asks `POST /auth/ws-token` with its key and passes the token as `?token=` when it
opens the socket. A token is random (`secrets`), held only in this process's memory, bound to
the role that asked, valid for `ttl` seconds and spent by its first use: one that leaks through
a log or a browser's history after the connection opened lets no one in.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .keys import Role

WS_TOKEN_TTL_SECONDS = 60.0
# Tokens never redeemed are forgotten when they expire; this caps the memory a client asking
# for tokens in a loop can hold meanwhile (the oldest, nearest its expiry, goes first).
MAX_OUTSTANDING = 1000


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: datetime
    ttl_seconds: float


class WsTokens:
    def __init__(
        self, ttl: float = WS_TOKEN_TTL_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self._clock = clock
        # token -> (role, deadline on `clock`); insertion order is expiry order (one TTL).
        self._tokens: dict[str, tuple[Role, float]] = {}

    def __len__(self) -> int:
        return len(self._tokens)

    def issue(self, role: Role) -> IssuedToken:
        now = self._clock()
        self._forget_expired(now)
        while len(self._tokens) >= MAX_OUTSTANDING:
            del self._tokens[next(iter(self._tokens))]
        token = secrets.token_urlsafe(32)
        self._tokens[token] = (role, now + self.ttl)
        return IssuedToken(
            token=token,
            expires_at=datetime.now(UTC) + timedelta(seconds=self.ttl),
            ttl_seconds=self.ttl,
        )

    def redeem(self, token: str) -> Role | None:
        """The role `token` was issued to, once; None when it is unknown, spent or expired."""
        # A plain dict lookup: a 256-bit random value cannot be guessed, whatever the
        # lookup's timing might reveal about one.
        found = self._tokens.pop(token, None)
        if found is None:
            return None
        role, deadline = found
        return role if self._clock() < deadline else None

    def _forget_expired(self, now: float) -> None:
        for token, (_, deadline) in list(self._tokens.items()):
            if deadline > now:
                break
            del self._tokens[token]
