"""The rate limiter with a hand-moved clock (no sleeping), and one bot's limit of 3 a second."""

from __future__ import annotations

from bots.ratelimit import Limit, RateLimiter


class Clock:
    """Monotonic seconds that move only when a test moves them."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def limiter(bulk_share: float = 1.0) -> tuple[RateLimiter, Clock]:
    clock = Clock()
    return RateLimiter(bulk_share, clock=clock), clock


BOT = [Limit("telegram", 3, 1.0)]
