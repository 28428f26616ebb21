"""WebSocket tokens: single-use, bound to a role, gone at their expiry (on a clock we move)."""

from __future__ import annotations

from vintagestory_api.auth.keys import Role
from vintagestory_api.auth.tokens import MAX_OUTSTANDING, WsTokens


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_token_carries_its_role_and_works_once() -> None:
    tokens = WsTokens(ttl=60, clock=ManualClock())
    admin, monitor = tokens.issue(Role.ADMIN), tokens.issue(Role.MONITOR)
    assert admin.token != monitor.token
    assert len(admin.token) >= 40
    assert tokens.redeem(monitor.token) is Role.MONITOR
    assert tokens.redeem(admin.token) is Role.ADMIN
    assert tokens.redeem(admin.token) is None
    assert tokens.redeem("never-issued") is None


def test_a_token_expires_after_its_ttl() -> None:
    clock = ManualClock()
    tokens = WsTokens(ttl=60, clock=clock)
    early, late = tokens.issue(Role.ADMIN), tokens.issue(Role.ADMIN)
    clock.now += 59.9
    assert tokens.redeem(early.token) is Role.ADMIN
    clock.now += 0.1
    assert tokens.redeem(late.token) is None


def test_expired_tokens_are_forgotten_and_outstanding_ones_are_capped() -> None:
    clock = ManualClock()
    tokens = WsTokens(ttl=60, clock=clock)
    for _ in range(10):
        tokens.issue(Role.ADMIN)
    clock.now += 60
    kept = tokens.issue(Role.ADMIN)
    assert len(tokens) == 1
    for _ in range(MAX_OUTSTANDING + 5):
        tokens.issue(Role.ADMIN)
    assert len(tokens) == MAX_OUTSTANDING
    # The oldest went first.
    assert tokens.redeem(kept.token) is None
